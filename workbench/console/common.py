"""What every entry point shares: error-to-exit-code mapping, broker opening, argument parsing,
and the one safe way to show text from outside.

Text from the broker or the web (worker names, queue names, job descriptions, errors, page titles)
is shown through `outside()` / `say()`: control characters are made visible by
`workbench.text.printable` and nothing is read as rich markup or emoji codes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.text import Text

from .. import broker as broker_mod
from .. import settings
from ..errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, WorkbenchError
from ..text import printable

#: Human output goes to stderr so that stdout stays clean for --json and pipes. Neither console
#: turns `:name:` into emoji or guesses highlights in text it did not write.
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out_console = Console(highlight=False, soft_wrap=True, emoji=False)

#: Every --help ends with the exit codes a script can rely on.
EXIT_CODES = """exit codes:
  0    done (also `q` or Ctrl-D at a question)
  1    runtime failure: the broker unreachable, a job failed or was stopped, a worker would not stop
  2    usage error: a bad flag, value or answer (one sentence says which)
  130  interrupted (Ctrl-C)"""


class Quit(Exception):
    """Raised when the person answers `q` (or ends the input): leave cleanly, exit 0."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one sentence and exit code 2, and lists the exit codes in --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        epilog = kwargs.pop("epilog", None)
        kwargs["epilog"] = f"{epilog}\n\n{EXIT_CODES}" if epilog else EXIT_CODES
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help).")


def outside(value: object, style: str = "", *, keep_newlines: bool = False) -> Text:
    """Text from outside as an inert rich Text: control characters visible, markup shown literally."""
    return Text(printable(value, keep_newlines=keep_newlines), style=style)


def say(*parts: object, console: Console = err_console, style: str = "") -> None:
    """Print one line made of words and outside values, none of it read as markup.

    A part may be a `(text, style)` pair for a styled word such as `("warning: ", "yellow")`.
    """
    line = Text(style=style)
    for part in parts:
        if isinstance(part, Text):
            line.append(part)
        elif isinstance(part, tuple) and len(part) == 2:
            line.append(outside(part[0], part[1]))
        else:
            line.append(outside(part))
    console.print(line)


def _broker_url_flag(value: str) -> str:
    """An empty --redis-url is a slip (an unset shell variable), not "the default": refuse it."""
    if not value.strip():
        raise argparse.ArgumentTypeError("needs a URL such as redis://127.0.0.1:6379/0, not an empty string")
    return value


def add_broker_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        type=_broker_url_flag,
        help="broker URL (default: $REDIS_URL, else redis://127.0.0.1:6379/0, started embedded if absent)",
    )


def open_broker(flag_url: str | None, *, announce: bool | None = None) -> broker_mod.Broker:
    """Open the broker and say which one it is and whether the workbench started it.

    Starting the embedded broker is always said. Otherwise the line is printed when `announce` is
    True, or (the default, None) when a person watches stderr: a script's stderr stays quiet.
    """
    found = broker_mod.open_broker(flag_url)
    if found.started_embedded:
        folder = broker_mod.data_dir() / "broker"
        say(
            f"Started the embedded broker (valkey) at {found.masked_url}, data in {folder}; "
            "the workbench started it and `make stop` stops it."
        )
    elif announce or (announce is None and err_console.is_terminal):
        say(describe_broker(found))
    return found


def describe_broker(found: broker_mod.Broker) -> str:
    """`Using the Redis already running at 127.0.0.1:6379; not started by the workbench.`"""
    kind = _server_kind(found.connection)
    parts = found.connection.connection_pool.connection_kwargs
    if found.source == "local":
        where = f"{parts.get('host')}:{parts.get('port')}"
        if _embedded_pid(broker_mod.data_dir() / "broker") is not None:
            return f"Using the embedded broker ({kind}) the workbench started earlier at {where}; `make stop` stops it."
        return f"Using the {kind} already running at {where}; not started by the workbench."
    source = "--redis-url" if found.source == "flag" else "REDIS_URL"
    if getattr(found.connection.connection_pool, "service_name", None) is not None:
        primary = broker_mod.server_address(found.connection)
        return (
            f"Using the {kind} primary {primary}, found through the sentinels of {found.masked_url} (from {source}); "
            "not started by the workbench."
        )
    return f"Using the {kind} at {found.masked_url} (from {source}); not started by the workbench."


def _server_kind(connection: redis.Redis) -> str:
    """`Valkey` or `Redis`, as the server itself says (INFO may be denied by an ACL: then Redis)."""
    try:
        info = connection.info("server")
    except redis.RedisError:
        return "Redis"
    return "Valkey" if str(info.get("server_name", "")).lower() == "valkey" else "Redis"


def _embedded_pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "valkey.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if broker_mod.is_valkey(pid) else None


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Call `main`, turning every error into one sentence on stderr and an exit code, never a traceback.

    Workbench errors carry their own sentence and code; a broker error nobody caught names the
    broker problem, anything else its kind and message (exit 1). Ctrl-C is exit 130 (interrupted,
    as shells count it); `q` or the end of input at a prompt is 0; SystemExit passes through.
    A malformed WORKBENCH_* setting is refused first (exit 2), before anything starts that would read it.
    """
    try:
        settings.check()
        return main(sys.argv[1:] if argv is None else argv)
    except WorkbenchError as exc:
        err_console.print(outside(f"error: {exc}"))
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("\nInterrupted.")
        return EXIT_INTERRUPTED
    except (Quit, EOFError):
        return EXIT_OK
    except redis.RedisError as exc:
        err_console.print(outside(f"error: {broker_problem(exc)}"))
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last resort: one sentence instead of a traceback
        err_console.print(outside(f"error: the command stopped on an unexpected {type(exc).__name__}: {_reason(exc)}."))
        return EXIT_FAILURE


def broker_problem(exc: redis.RedisError) -> str:
    """A broker error no layer below turned into words, as one sentence saying what went wrong with the broker."""
    reason = _reason(exc)
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"the broker denied a command ({reason}); grant the broker user that command, or use another user."
    if isinstance(exc, redis.AuthenticationError):
        return f"the broker refused the credentials ({reason}); check the user and password in the broker URL."
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"lost the connection to the broker ({reason}); check that it runs and is reachable, then retry."
    if isinstance(exc, redis.ResponseError):
        return f"the broker refused a command ({reason}); a key may hold data the workbench did not write."
    return f"the broker failed ({type(exc).__name__}: {reason})."


def _reason(exc: BaseException) -> str:
    """An exception's message on one line, any URL in it with its credentials masked."""
    text = " ".join(str(exc).split()).rstrip(".") or "no message"
    return _URL.sub(lambda found: broker_mod.mask_url(found.group(0)), text)


#: A URL inside an error message (its credentials are masked before it is shown).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def require_tty(flag: str) -> None:
    """Refuse to prompt when nobody can answer."""
    if not sys.stdin.isatty():
        raise UsageError(f"missing {flag}; stdin is not a terminal.")


__all__ = [
    "EXIT_USAGE",
    "ArgumentParser",
    "Quit",
    "add_broker_flag",
    "describe_broker",
    "err_console",
    "open_broker",
    "out_console",
    "outside",
    "require_tty",
    "run",
    "say",
]
