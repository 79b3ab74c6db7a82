"""Inflating compressed job fields with a ceiling: a small record never costs more than the cap.

RQ stores a job's data, and an error's text, zlib-compressed, and inflates them without a limit;
a 500 KB record can inflate to gigabytes. Every reader uses `inflate` (or `check`) first: workers,
consoles and the janitor through `CatalogJob.restore`, the dashboard and search directly. It stops at
`defaults.MAX_INFLATED_BYTES` and says the record is too large.
"""

from __future__ import annotations

import zlib
from base64 import b64decode
from typing import Any

from rq.results import Result

from . import defaults


class UnreadableRecord(Exception):
    """Raised when a job record in the broker cannot be loaded: malformed, not JSON, or too large."""


class RecordTooLarge(UnreadableRecord):
    """Raised when a job record's data, error text or result would inflate past defaults.MAX_INFLATED_BYTES."""


def inflate(blob: bytes, cap: int = defaults.MAX_INFLATED_BYTES) -> bytes:
    """zlib-inflate `blob`, never past `cap` bytes: RecordTooLarge beyond it, UnreadableRecord if corrupt."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, cap + 1)
    except zlib.error as exc:
        raise UnreadableRecord(f"compressed data is corrupt ({exc})") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise RecordTooLarge(f"it would inflate past {cap // (1024 * 1024)} MiB")
    return out


def check(blob: bytes | None, cap: int = defaults.MAX_INFLATED_BYTES) -> None:
    """RecordTooLarge if `blob` is zlib data inflating past `cap`; plain or corrupt data passes (RQ keeps it as is)."""
    if not blob:
        return
    try:
        inflate(blob, cap)
    except RecordTooLarge:
        raise
    except UnreadableRecord:
        pass  # not compressed: RQ keeps such a field as it is


def latest_result(job: Any) -> Result | None:
    """RQ's `job.latest_result()`, with a failure's compressed text checked against the cap before RQ inflates it."""
    response = job.connection.xrevrange(Result.get_key(job.id), "+", "-", count=1)
    if not response:
        return None
    result_id, payload = response[0]
    exc_string = payload.get(b"exc_string")
    if exc_string:
        try:
            blob = b64decode(exc_string, validate=False)
        except ValueError:
            blob = b""  # not base64: RQ's own restore refuses it
        check(blob)
    return Result.restore(job.id, result_id.decode(), payload, connection=job.connection, serializer=job.serializer)
