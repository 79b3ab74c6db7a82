"""Serve rq-dashboard for the workbench: `python dashboard_main.py` (see --help)."""

from workbench.console.dashboard import entry

if __name__ == "__main__":
    raise SystemExit(entry())
