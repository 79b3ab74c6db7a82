"""The `count_primes` task: an odd-only segmented sieve of Eratosthenes in bounded memory.

Memory is two segment-sized buffers plus the base primes below sqrt(limit) (about 4,700 of them
at the 2e9 bound), whatever the range; only odd numbers are stored, which halves both the memory
and the work of the sieve. Resumable: the checkpoint is the next segment and the count so far.
"""

from __future__ import annotations

import math

from workbench import checkpoint
from workbench.catalog import INT, Param, task
from workbench.progress import report

#: Odd numbers per segment (2 MiB of bytearray, a 4 Mi-wide stretch of integers): the per-prime Python
#: overhead dominates, so larger is faster (measured 1<<19: 3.9 s, 1<<21: 2.3 s for 1e9) while the three
#: segment-sized buffers (6 MiB) keep the whole worker far below the 64 MiB bound at any limit.
SEGMENT = 1 << 21


def base_primes(limit: int) -> list[int]:
    """The primes p <= limit by a plain odd-only sieve (limit is at most sqrt(2e9) ~ 44,722 here)."""
    if limit < 2:
        return []
    size = (limit - 1) // 2  # index i stands for 2*i + 3
    odd = bytearray([1]) * size
    for i in range((math.isqrt(limit) - 1) // 2):
        if odd[i]:
            p = 2 * i + 3
            first = (p * p - 3) // 2
            odd[first::p] = bytes(len(range(first, size, p)))
    return [2] + [2 * i + 3 for i, flag in enumerate(odd) if flag]


@task(
    params=[
        Param("limit", INT, 1_000_000, "count primes below this", 2, 2_000_000_000),
        Param("start", INT, 0, "count primes from here", 0, 2_000_000_000),
    ],
    timeout=600,  # the full 2e9 range takes ~5 s alone here; ten at once on 2 cores, under a minute
    shown=("count", "start", "limit"),
    resumable=True,
)
def count_primes(limit: int = 1_000_000, start: int = 0) -> dict:
    """Count the primes in [start, limit) with an odd-only segmented sieve."""
    low, high = max(start, 2), limit
    if high <= low:
        return {"start": start, "limit": limit, "count": 0}
    count = 1 if low <= 2 < high else 0
    odd_primes = base_primes(math.isqrt(high - 1))[1:]
    zeros, ones = memoryview(bytes(SEGMENT)), memoryview(bytes([1]) * SEGMENT)
    segment = bytearray(SEGMENT)
    first_odd = max(low, 3) | 1
    span = 2 * SEGMENT
    resume_at = first_odd
    saved = checkpoint.load()
    if _fits(saved, first_odd, high, span):
        resume_at, count = saved["next"], saved["count"]
    for seg_low in range(resume_at, high, span):
        size = min(SEGMENT, (high - seg_low + 1) // 2)  # odd numbers seg_low, seg_low+2, ... < high
        segment[:size] = ones[:size]
        seg_end = seg_low + 2 * size  # exclusive
        for p in odd_primes:
            square = p * p
            if square >= seg_end:
                break
            multiple = max(square, -(-seg_low // p) * p)
            if not multiple & 1:
                multiple += p
            index = (multiple - seg_low) // 2
            if index < size:
                segment[index:size:p] = zeros[: (size - 1 - index) // p + 1]
        # A segment may start below a base prime's square; the primes themselves are never crossed off.
        count += segment.count(1, 0, size)
        done = min(seg_end, high)
        report((done - low) / (high - low), f"{done:,} of {high:,}")
        checkpoint.save({"next": seg_low + span, "count": count}, fraction=(done - low) / (high - low))
    return {"start": start, "limit": limit, "count": count}


def _fits(saved: object, first_odd: int, high: int, span: int) -> bool:
    """Whether a checkpoint is one of this range's segment boundaries (else: a fresh start, never astray)."""
    if not isinstance(saved, dict):
        return False
    at, count = saved.get("next"), saved.get("count")
    if not (isinstance(at, int) and isinstance(count, int) and count >= 0):
        return False
    return first_odd < at and (at - first_odd) % span == 0 and at - span < high
