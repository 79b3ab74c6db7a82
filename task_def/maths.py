"""Heavy-maths tasks: the n-th Fibonacci number, Monte-Carlo pi, and an n-fold sha256 chain.

Each is CPU-bound, reports progress, and has bounds (in the catalog) that finish well inside its
timeout on a 2-core machine.
"""

from __future__ import annotations

import hashlib
import math
import random

from workbench.progress import report

#: Digits of F(n) returned from its end; the whole number can have millions of digits.
LAST_DIGITS = 20
#: Samples (and hashes) per progress step: a few hundred milliseconds of work each.
CHUNK = 1_000_000


def fibonacci(n: int = 1_000_000) -> dict:
    """F(n) by fast doubling: its digit count and last digits (the whole number is too long to return)."""
    a, b = 0, 1  # F(k), F(k + 1) for the bits of n read so far
    bits = bin(n)[2:] if n else ""
    for done, bit in enumerate(bits, start=1):
        c = a * (2 * b - a)  # F(2k)
        d = a * a + b * b  # F(2k + 1)
        a, b = (d, c + d) if bit == "1" else (c, d)
        # The numbers double in length each step, so the last steps are nearly all the work.
        report(4.0 ** (done - len(bits)), f"bit {done} of {len(bits)}")
    digits = decimal_digits(a)
    return {
        "n": n,
        "digits": digits,
        "last_digits": str(a % 10**LAST_DIGITS).zfill(min(digits, LAST_DIGITS)),
    }


def decimal_digits(x: int) -> int:
    """The number of decimal digits of x >= 0, exactly, without str() (quadratic, capped at 4,300 digits)."""
    if x < 10:
        return 1
    guess = int((x.bit_length() - 1) * math.log10(2))  # within one of floor(log10(x))
    power = 10**guess
    if power > x:
        return guess
    return guess + 2 if power * 10 <= x else guess + 1


def monte_carlo_pi(samples: int = 1_000_000, seed: int = 0) -> dict:
    """Estimate pi from random points in the unit square; the seed makes a run repeatable."""
    rand = random.Random(seed).random
    inside = 0
    done = 0
    while done < samples:
        step = min(CHUNK, samples - done)
        inside += sum(1 for _ in range(step) if rand() ** 2 + rand() ** 2 < 1.0)
        done += step
        report(done / samples, f"{done:,} of {samples:,} samples")
    estimate = 4 * inside / samples
    # One standard error of the estimate: 4 * sqrt(p (1 - p) / n) for the hit rate p.
    p = inside / samples
    return {
        "samples": samples,
        "seed": seed,
        "inside": inside,
        "estimate": estimate,
        "std_error": 4 * math.sqrt(p * (1 - p) / samples),
    }


def sha256_chain(rounds: int = 1_000_000, data: str = "workbench") -> dict:
    """Hash `data` (UTF-8) with sha256, then hash the 32-byte digest again, `rounds` times in all."""
    digest = data.encode()
    sha256 = hashlib.sha256
    done = 0
    while done < rounds:
        step = min(CHUNK, rounds - done)
        for _ in range(step):
            digest = sha256(digest).digest()
        done += step
        report(done / rounds, f"{done:,} of {rounds:,} rounds")
    return {"rounds": rounds, "data": data, "digest": digest.hex()}
