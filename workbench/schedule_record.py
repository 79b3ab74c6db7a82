"""A stored schedule record, checked field by field before anything uses it.

Schedules live in the broker (`workbench:schedules`), so a record is data from outside: anyone
with broker access can write one. A record is used (listed, timed, fired) only when every field
has the type and range the producer itself would have written: the name matches its hash field,
task and queue names are well formed, count, timeout, retries and back-offs are within the
producer's bounds, exactly one of an interval or a valid cron line, timestamps are real moments.
Anything else makes the record unreadable: `--schedules` names it and the consumers' scheduler
skips it, so one forged record never stops the others from firing or being listed. Firing still
looks the task up in the catalog and validates its parameters (`workbench.schedules.fire`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from . import defaults, validators
from .errors import UsageError

#: Latest moment a stored timestamp may name (9999-12-31, the last day `datetime` can show).
_LAST_MOMENT = 253_402_300_799
_BATCH_ID = re.compile(r"[0-9a-f]{12}")


class BadRecord(ValueError):
    """Raised when a stored schedule record is not one the producer could have written; says which field."""


def _whole(data: dict, name: str, low: int, high: int, *, optional: bool = False, default: int | None = None) -> Any:
    value = data.get(name, default)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRecord(f"{name} is not a whole number from {low:,} to {high:,}")
    return value


def _moment(data: dict, name: str, *, optional: bool = False) -> float | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise BadRecord(f"{name} is not a time stamp")
    if not 0 <= value <= _LAST_MOMENT:
        raise BadRecord(f"{name} is not a time between 1970 and 9999")
    return float(value)


def _checked(check: Callable[[Any], Any], value: Any, name: str) -> Any:
    if not isinstance(value, str):
        raise BadRecord(f"{name} is not text")
    try:
        return check(value)
    except UsageError as exc:
        raise BadRecord(f"{name}: {exc}") from None


def check(raw: str | bytes, name: str | None = None) -> dict[str, Any]:
    """The record's fields, each checked (BadRecord naming the first that is not); `name`: its hash field."""
    if len(raw) > defaults.MAX_SCHEDULE_RECORD_BYTES:
        raise BadRecord(f"the record is over {defaults.MAX_SCHEDULE_RECORD_BYTES:,} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRecord("the record is not JSON") from None
    if not isinstance(data, dict):
        raise BadRecord("the record is not a JSON object")
    record_name = _checked(validators.schedule_name, data.get("name"), "name")
    if name is not None and record_name != name:
        raise BadRecord("the name inside the record is not the name it is stored under")
    if not isinstance(data.get("params"), dict):
        raise BadRecord("params is not an object")
    every_s = _whole(data, "every_s", defaults.MIN_EVERY_S, defaults.MAX_EVERY_S, optional=True)
    cron = data.get("cron")
    if cron is not None:
        cron = _checked(validators.cron_expression, cron, "cron")
    if (every_s is None) == (cron is None):
        raise BadRecord("a schedule needs exactly one of every_s and cron")
    intervals = data.get("retry_intervals") or []
    if not isinstance(intervals, list) or len(intervals) > defaults.MAX_RETRIES:
        raise BadRecord("retry_intervals is not a list of back-offs")
    for number, _ in enumerate(intervals):
        _whole({"back-off": intervals[number]}, "back-off", 0, defaults.MAX_RETRY_INTERVAL_S)
    last_batch = data.get("last_batch")
    if last_batch is not None and not (isinstance(last_batch, str) and _BATCH_ID.fullmatch(last_batch)):
        raise BadRecord("last_batch is not a batch id")
    return {
        "name": record_name,
        "task": _checked(lambda text: validators.text(text, "task", 200), data.get("task"), "task"),
        "params": data["params"],
        "queue": _checked(validators.queue_name, data.get("queue"), "queue"),
        "count": _whole(data, "count", defaults.MIN_COUNT, defaults.MAX_COUNT, default=1),
        "timeout_s": _whole(data, "timeout_s", defaults.MIN_JOB_TIMEOUT_S, defaults.MAX_JOB_TIMEOUT_S, optional=True),
        "retries": _whole(data, "retries", 0, defaults.MAX_RETRIES, default=0),
        "retry_intervals": tuple(intervals),
        "every_s": every_s,
        "cron": cron,
        "created": _moment(data, "created"),
        "last_fired": _moment(data, "last_fired", optional=True),
        "last_batch": last_batch,
        "fired": _whole(data, "fired", 0, 2**53, default=0),
    }
