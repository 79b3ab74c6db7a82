"""Pure validators: each converts a raw value or raises UsageError with one actionable sentence."""

from __future__ import annotations

import math
import re

from . import defaults
from .errors import UsageError

_QUEUE_NAME = re.compile(defaults.QUEUE_NAME_PATTERN)


def _grouped(number: float) -> str:
    """`2,000,000,000` for whole numbers (also whole floats such as -1.0), `0.5` otherwise."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def whole_number(raw: object, name: str, minimum: int, maximum: int) -> int:
    """Convert `raw` to an int within [minimum, maximum]."""
    sentence = f"{name} must be a whole number from {_grouped(minimum)} to {_grouped(maximum)}"
    if isinstance(raw, bool):
        raise UsageError(f"{sentence}, not {raw!r}.")
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip().replace("_", "")
        if not re.fullmatch(r"[+-]?\d{1,30}", text):
            raise UsageError(f"{sentence}, not {str(raw)!r}.")
        value = int(text)
    if not minimum <= value <= maximum:
        raise UsageError(f"{sentence}, not {_grouped(value)}.")
    return value


def real_number(raw: object, name: str, minimum: float, maximum: float) -> float:
    """Convert `raw` to a finite float within [minimum, maximum] (NaN, inf and 1e309 refused)."""
    sentence = f"{name} must be a number from {_grouped(minimum)} to {_grouped(maximum)}"
    if isinstance(raw, bool):
        raise UsageError(f"{sentence}, not {raw!r}.")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{sentence}, not {str(raw)!r}.") from None
    if not math.isfinite(value):
        raise UsageError(f"{sentence}, not {str(raw)!r}.")
    if not minimum <= value <= maximum:
        raise UsageError(f"{sentence}, not {_grouped(value)}.")
    return value


def text(raw: object, name: str, max_length: int) -> str:
    """Convert `raw` to a non-empty string of at most `max_length` characters."""
    value = str(raw).strip()
    if not value:
        raise UsageError(f"{name} must not be empty.")
    if len(value) > max_length:
        raise UsageError(f"{name} must be at most {max_length:,} characters long.")
    return value


def queue_name(raw: object) -> str:
    """A queue name: lower-case letters, digits, `_` and `-`, starting with a letter or digit."""
    value = str(raw).strip()
    if not _QUEUE_NAME.fullmatch(value):
        raise UsageError(
            f"queue name {value!r} is not allowed: use 1-64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit."
        )
    return value


def queue_names(raw: str | list[str]) -> list[str]:
    """Several queue names, comma-separated or as a list, in priority order without repeats."""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    names: list[str] = []
    for item in items:
        for part in str(item).split(","):
            name = queue_name(part)
            if name not in names:
                names.append(name)
    if not names:
        raise UsageError("give at least one queue name.")
    return names


def worker_count(raw: object) -> int:
    return whole_number(raw, "the number of workers", defaults.MIN_WORKERS, defaults.MAX_WORKERS)


def job_count(raw: object) -> int:
    return whole_number(raw, "count", defaults.MIN_COUNT, defaults.MAX_COUNT)


def job_timeout(raw: object) -> int:
    return whole_number(raw, "timeout", defaults.MIN_JOB_TIMEOUT_S, defaults.MAX_JOB_TIMEOUT_S)


def retries(raw: object) -> int:
    return whole_number(raw, "retries", 0, defaults.MAX_RETRIES)


def key_value(raw: str) -> tuple[str, str]:
    """Split a `KEY=VALUE` flag argument."""
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--param takes KEY=VALUE, not {raw!r}.")
    return key.strip(), value
