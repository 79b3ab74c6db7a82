"""Stop workers through the broker (see --help): `python kill_thread/kill_workers.py --host HOST [--force]`."""

import sys
from pathlib import Path

# Run as a script, Python puts kill_thread/ on sys.path; the workbench package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.console.control import kill_workers_entry  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(kill_workers_entry())
