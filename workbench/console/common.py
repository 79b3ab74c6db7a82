"""What every entry point shares: error-to-exit-code mapping, broker opening, argument parsing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rich.console import Console

from .. import broker as broker_mod
from ..errors import EXIT_OK, EXIT_USAGE, UsageError, WorkbenchError

#: Human output goes to stderr so that stdout stays clean for --json and pipes.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one sentence and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help).")


def add_broker_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="broker URL (default: $REDIS_URL, else redis://127.0.0.1:6379/0, started embedded if absent)",
    )


def open_broker(flag_url: str | None) -> broker_mod.Broker:
    """Open the broker and say so when this call had to start the embedded one."""
    found = broker_mod.open_broker(flag_url)
    if found.started_embedded:
        err_console.print(
            f"Started the embedded broker (valkey) at {found.masked_url}, data in {broker_mod.data_dir() / 'broker'}."
        )
    return found


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Call `main`, turning workbench errors into one sentence on stderr and an exit code."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except WorkbenchError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return EXIT_OK
    except EOFError:
        return EXIT_OK


def require_tty(flag: str) -> None:
    """Refuse to prompt when nobody can answer."""
    if not sys.stdin.isatty():
        raise UsageError(f"missing {flag}; stdin is not a terminal.")


__all__ = ["ArgumentParser", "EXIT_USAGE", "add_broker_flag", "open_broker", "run", "require_tty"]
