"""Inflating compressed job fields with a ceiling: a small record never costs more than the cap.

RQ stores a job's data, and an error's text, zlib-compressed, and inflates them without a limit;
a 500 KB record can inflate to gigabytes. Readers that show records (the dashboard, search) use
`inflate`, which stops at `defaults.MAX_INFLATED_BYTES` and says the record is too large.
"""

from __future__ import annotations

import zlib

from . import defaults
from .jobs import RecordTooLarge, UnreadableRecord


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
