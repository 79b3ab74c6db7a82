"""`consumer_main.py` with the test-only `mark` task registered (workers fork from this process)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.marker_tasks import register  # noqa: E402
from workbench.console.consumer import entry  # noqa: E402

register()  # before the workers fork, so they inherit it
raise SystemExit(entry())
