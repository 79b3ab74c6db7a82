"""The `count_primes` task: a segmented sieve of Eratosthenes in bounded memory."""

from __future__ import annotations

import math

from workbench.progress import report

#: Numbers per segment: 2 MiB of bytearray keeps memory bounded at any limit and stays cache-friendly.
SEGMENT = 1 << 21


def _base_primes(limit: int) -> list[int]:
    """Primes up to `limit` (inclusive) by a plain sieve; limit is at most sqrt(2e9) ~ 44,722."""
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"[: min(2, limit + 1)]
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return [i for i, flag in enumerate(sieve) if flag]


def count_primes(limit: int = 1_000_000, start: int = 0) -> dict:
    """Count the primes p with start <= p < limit."""
    low = max(start, 2)
    if limit <= low:
        return {"start": start, "limit": limit, "count": 0}
    primes = _base_primes(math.isqrt(limit - 1))
    total = 0
    for seg_low in range(low, limit, SEGMENT):
        seg_high = min(seg_low + SEGMENT, limit)
        segment = bytearray([1]) * (seg_high - seg_low)
        for p in primes:
            if p * p >= seg_high:
                break
            first = max(p * p, (seg_low + p - 1) // p * p)
            segment[first - seg_low :: p] = bytes(len(range(first, seg_high, p)))
        total += segment.count(1)
        report((seg_high - low) / (limit - low), f"{seg_high:,} of {limit:,}")
    return {"start": start, "limit": limit, "count": total}
