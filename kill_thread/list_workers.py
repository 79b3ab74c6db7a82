"""List every worker registered in the broker, on any machine: `python kill_thread/list_workers.py [--json]`."""

import sys
from pathlib import Path

# Run as a script, Python puts kill_thread/ on sys.path; the workbench package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.console.control import list_entry  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(list_entry())
