"""Enqueue catalog tasks: `python producer_main.py` (interactive) or with flags (see --help)."""

from workbench.console.producer import entry

if __name__ == "__main__":
    raise SystemExit(entry())
