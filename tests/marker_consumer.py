"""`consumer_main.py` whose workers may also run the test-only `mark` task (tests/marker_tasks.py).

It names that module in WORKBENCH_TASKS, the way a user adds tasks of their own.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.console.consumer import entry  # noqa: E402
from workbench.defaults import ENV_TASKS  # noqa: E402

os.environ[ENV_TASKS] = "tests.marker_tasks"  # loaded before the workers fork, so they inherit it
raise SystemExit(entry())
