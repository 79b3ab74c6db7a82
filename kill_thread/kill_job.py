"""Stop one running job wherever it runs: `python kill_thread/kill_job.py JOB_ID`."""

import sys
from pathlib import Path

# Run as a script, Python puts kill_thread/ on sys.path; the workbench package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.console.control import kill_job_entry  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(kill_job_entry())
