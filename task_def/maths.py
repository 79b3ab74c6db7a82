"""Heavy-maths tasks: the n-th Fibonacci number, Monte-Carlo pi, and an n-fold sha256 chain.

Each is CPU-bound, reports progress, and has bounds (in the catalog) that finish well inside its
timeout on a 2-core machine. `monte_carlo_pi` and `sha256_chain` are resumable: they save a
checkpoint (`workbench.checkpoint`) at most once a second, and a re-run after an interruption carries
on from it with exactly the result an uninterrupted run gives. `fibonacci` is not: its state is the
two numbers F(k), F(k+1), which pass the 64 KiB checkpoint limit (F(190,000) or so) long before the
last doubling steps, where nearly all its work is.
"""

from __future__ import annotations

import hashlib
import math
import random

from workbench import checkpoint
from workbench.catalog import INT, STR, Param, task
from workbench.progress import report

#: Digits of F(n) returned from its end; the whole number can have millions of digits.
LAST_DIGITS = 20
#: Samples per progress step and checkpoint: a few hundred milliseconds of work each.
CHUNK = 1_000_000
#: Hashes per progress step and checkpoint ask (~60 ms here): a resumed chain repeats at most a second and a step.
CHAIN_STEP = 1 << 17
#: Largest seed: any 64-bit signed value, so seeds from other tools fit.
MAX_SEED = 2**63 - 1


@task(
    params=[Param("n", INT, 1_000_000, "which Fibonacci number", 0, 20_000_000)],
    timeout=300,  # n = 2e7 (4.2 million digits) takes ~11 s alone here
    shown=("digits", "last_digits"),
)
def fibonacci(n: int = 1_000_000) -> dict:
    """The n-th Fibonacci number by fast doubling: its digit count and last 20 digits.

    The whole number can have millions of digits, too long to return.
    """
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


@task(
    params=[
        Param("samples", INT, 1_000_000, "random points to draw", 1, 100_000_000),
        Param("seed", INT, 0, "random seed", 0, MAX_SEED),
    ],
    timeout=600,  # 1e8 samples take ~25 s alone here
    shown=("estimate", "std_error"),
    resumable=True,
)
def monte_carlo_pi(samples: int = 1_000_000, seed: int = 0) -> dict:
    """Estimate pi from random points in the unit square (repeatable with a seed)."""
    generator = random.Random(seed)
    inside = done = 0
    saved = checkpoint.load()
    if _pi_state_fits(saved, samples):
        version, internal, gauss = saved["rng"]
        generator.setstate((version, tuple(internal), gauss))  # the stream carries on where it was
        inside, done = saved["inside"], saved["done"]
    rand = generator.random
    while done < samples:
        step = min(CHUNK, samples - done)
        inside += sum(1 for _ in range(step) if rand() ** 2 + rand() ** 2 < 1.0)
        done += step
        report(done / samples, f"{done:,} of {samples:,} samples")
        checkpoint.save({"done": done, "inside": inside, "rng": generator.getstate()}, fraction=done / samples)
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


@task(
    params=[
        Param("rounds", INT, 1_000_000, "how many times to hash", 1, 100_000_000),
        Param("data", STR, "workbench", "the text hashed first", maximum=1000),
    ],
    timeout=900,  # 1e8 rounds take ~50 s alone here
    shown=("digest",),
    resumable=True,
)
def sha256_chain(rounds: int = 1_000_000, data: str = "workbench") -> dict:
    """Hash a text with sha256, then hash the digest again, n times in all.

    `data` is hashed as UTF-8, then the 32-byte digest, `rounds` times in all.
    """
    digest = data.encode()
    done = 0
    saved = checkpoint.load()
    if _chain_state_fits(saved, rounds):
        digest, done = bytes.fromhex(saved["digest"]), saved["done"]
    sha256 = hashlib.sha256
    while done < rounds:
        step = min(CHAIN_STEP, rounds - done)
        for _ in range(step):
            digest = sha256(digest).digest()
        done += step
        report(done / rounds, f"{done:,} of {rounds:,} rounds")
        checkpoint.save({"done": done, "digest": digest.hex()}, fraction=done / rounds)
    return {"rounds": rounds, "data": data, "digest": digest.hex()}


# A checkpoint is data from the broker: one that does not fit this job starts it afresh, never astray.
def _chain_state_fits(saved: object, rounds: int) -> bool:
    if not isinstance(saved, dict) or not isinstance(saved.get("done"), int) or not 0 < saved["done"] <= rounds:
        return False
    digest = saved.get("digest")
    return isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _pi_state_fits(saved: object, samples: int) -> bool:
    if not isinstance(saved, dict):
        return False
    done, inside, rng = saved.get("done"), saved.get("inside"), saved.get("rng")
    if not (isinstance(done, int) and isinstance(inside, int) and 0 < done <= samples and 0 <= inside <= done):
        return False
    if not (isinstance(rng, list) and len(rng) == 3 and isinstance(rng[1], list)):
        return False
    try:
        random.Random().setstate((rng[0], tuple(rng[1]), rng[2]))
    except (TypeError, ValueError, OverflowError):
        return False
    return True
