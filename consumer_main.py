"""Run supervised workers: `python consumer_main.py` (interactive) or with flags (see --help)."""

from workbench.console.consumer import entry

if __name__ == "__main__":
    raise SystemExit(entry())
