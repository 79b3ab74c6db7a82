"""Run the broker for several machines, in the foreground: `python broker_main.py` (see --help)."""

from workbench.console.broker import entry

if __name__ == "__main__":
    raise SystemExit(entry())
