"""Pure validators: each converts a raw value or raises UsageError with one actionable sentence."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from . import defaults
from .errors import UsageError

_QUEUE_NAME = re.compile(defaults.QUEUE_NAME_PATTERN)


def _grouped(number: float) -> str:
    """`2,000,000,000` for whole numbers (also whole floats such as -1.0), `0.5` otherwise."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


#: Digit grouping people type and the consoles print: `20,000` (groups of three) or `20_000`.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][+-]?\d+)?", re.ASCII)
_UNDERSCORED = re.compile(r"[+-]?\d+(?:_\d+)+(?:\.\d*)?(?:[eE][+-]?\d+)?", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
#: More digits than this is never a sensible count, limit or seed: refused before converting.
_MAX_DIGITS = 30


def _number_text(raw: object) -> str | None:
    """`raw` as plain decimal text (grouping removed), or None when it is not written as a number."""
    text = str(raw).strip()
    if _GROUPED.fullmatch(text):
        return text.replace(",", "")
    if _UNDERSCORED.fullmatch(text):
        return text.replace("_", "")
    return text if _DECIMAL.fullmatch(text) else None


def whole_number(raw: object, name: str, minimum: int, maximum: int) -> int:
    """Convert `raw` to an int within [minimum, maximum].

    Accepts what the consoles print and people type: `20000`, `20,000`, `20_000`, and `2e7` or
    `2.0` when the value is whole.
    """
    sentence = f"{name} must be a whole number from {_grouped(minimum)} to {_grouped(maximum)}"
    if isinstance(raw, bool):
        raise UsageError(f"{sentence}, not {raw!r}.")
    if isinstance(raw, int):
        value = raw
    else:
        plain = _number_text(raw)
        try:
            number = Decimal(plain) if plain is not None else None
        except InvalidOperation:
            number = None
        whole = number is not None and number.is_finite() and number.adjusted() < _MAX_DIGITS
        if number is None or not whole or number != number.to_integral_value():
            raise UsageError(f"{sentence}, not {str(raw).strip()!r}.")
        value = int(number)
    if not minimum <= value <= maximum:
        raise UsageError(f"{sentence}, not {_grouped(value)}.")
    return value


def real_number(raw: object, name: str, minimum: float, maximum: float) -> float:
    """Convert `raw` to a finite float within [minimum, maximum] (NaN, inf and 1e309 refused)."""
    sentence = f"{name} must be a number from {_grouped(minimum)} to {_grouped(maximum)}"
    if isinstance(raw, bool):
        raise UsageError(f"{sentence}, not {raw!r}.")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        plain = _number_text(raw)
        value = float(plain) if plain is not None else math.nan
    if not math.isfinite(value):
        raise UsageError(f"{sentence}, not {str(raw).strip()!r}.")
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


def thread_count(raw: object) -> int:
    return whole_number(raw, "the number of jobs per worker", defaults.MIN_THREADS, defaults.MAX_THREADS)


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


#: One `<number><unit>` part of a duration such as `1h30m`.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE | re.ASCII)
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def duration(raw: object, name: str, minimum_s: int, maximum_s: int) -> int:
    """A duration in whole seconds: `90` (seconds), `90s`, `10m`, `2h`, `1d`, `1h30m`."""
    text = str(raw).strip().lower().replace(" ", "")
    sentence = (
        f"{name} must be a duration from {say_duration(minimum_s)} to {say_duration(maximum_s)} "
        f"such as 90s, 10m, 2h or 1h30m"
    )
    if re.fullmatch(r"\d+", text, re.ASCII):
        seconds = float(text)
    elif text and re.fullmatch(r"(?:\d+(?:\.\d+)?[dhms])+", text, re.ASCII):
        seconds = sum((float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(text)), 0.0)
    else:
        raise UsageError(f"{sentence}, not {str(raw).strip()!r}.")
    if not seconds.is_integer() or not minimum_s <= seconds <= maximum_s:
        raise UsageError(f"{sentence}, not {str(raw).strip()!r}.")
    return int(seconds)


def say_duration(seconds: int) -> str:
    """`1 s`, `10 m`, `1 d`: the largest unit that divides it."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_S[unit] == 0:
            return f"{seconds // _UNIT_S[unit]:,}{unit}"
    return f"{seconds:,}s"


def moment(raw: object, name: str, now: datetime, max_ahead_s: int) -> datetime:
    """A future point in time in ISO form (`2026-12-24T18:00`, local time unless it names a zone)."""
    text = str(raw).strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{name} must be a date and time such as 2026-12-24T18:00 (local time) or 2026-12-24T18:00+01:00, "
            f"not {text!r}."
        ) from None
    when = when.astimezone() if when.tzinfo is None else when  # a naive time is the local time here
    ahead = (when - now).total_seconds()
    if ahead <= 0:
        raise UsageError(f"{name} {text} is in the past; give a time after {now.astimezone():%Y-%m-%dT%H:%M:%S}.")
    if ahead > max_ahead_s:
        raise UsageError(f"{name} {text} is more than {say_duration(max_ahead_s)} ahead.")
    return when.astimezone(UTC)


def retry_intervals(raw: object) -> list[int]:
    """`--retry-interval S[,S...]`: seconds to wait before each retry (the last one repeats)."""
    items = [item.strip() for item in str(raw).split(",")]
    if not all(items) or len(items) > defaults.MAX_RETRIES:
        raise UsageError(
            f"--retry-interval takes 1 to {defaults.MAX_RETRIES} comma-separated durations such as 10 or 10,30,60, "
            f"not {str(raw).strip()!r}."
        )
    return [duration(item, "each retry interval", 0, defaults.MAX_RETRY_INTERVAL_S) for item in items]


#: RQ's own job id alphabet (rq.job.JOB_ID_PATTERN), bounded in length.
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def job_id(raw: object, name: str = "JOB_ID") -> str:
    """A job id as RQ writes them (letters, digits, '_' and '-'); refused before any broker use."""
    value = str(raw).strip()
    if not _JOB_ID.fullmatch(value):
        raise UsageError(
            f"{name} must be a job id (up to 128 letters, digits, '_' or '-', as list_workers.py shows it), "
            f"not {value!r}."
        )
    return value


def batch_id(raw: object) -> str:
    """A batch id: the 12 hex digits the producer prints when it enqueues."""
    value = str(raw).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{12}", value):
        raise UsageError(f"--batch takes a batch id of 12 hex digits (the producer prints it), not {value!r}.")
    return value


_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def schedule_name(raw: object) -> str:
    """A schedule's name: 1-64 letters, digits, '_', '.' or '-'."""
    value = str(raw).strip()
    if not _SCHEDULE_NAME.fullmatch(value):
        raise UsageError(
            f"schedule name {value!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return value


def cron_expression(raw: object) -> str:
    """Five cron fields (`*/5 * * * *`), checked by croniter, the parser RQ's CronScheduler uses."""
    from croniter import croniter

    value = " ".join(str(raw).split())
    if len(value.split(" ")) != 5 or not croniter.is_valid(value):
        raise UsageError(
            f"--cron takes five fields (minute hour day month weekday) such as '*/5 * * * *', not {value!r}."
        )
    return value
