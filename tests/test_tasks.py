"""Each maths task against an independent computation, its progress reports, and its memory bound.

The task functions are called directly here; test_catalog_only.py runs them through a real worker.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import random
import subprocess
import sys
from decimal import Decimal, getcontext

import pytest

import task_def.maths as maths
import task_def.primes as primes
from task_def.maths import decimal_digits, fibonacci, monte_carlo_pi, sha256_chain
from task_def.primes import base_primes, count_primes

from .support import ROOT

sleep_module = importlib.import_module("task_def.sleep")


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3,215,031,751 (bases 2, 3, 5, 7): an algorithm unlike a sieve."""
    if n < 2:
        return False
    for p in (2, 3, 5, 7):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@pytest.fixture
def progress(monkeypatch) -> list[float]:
    """The fractions the tasks report (outside a worker report() would do nothing)."""
    seen: list[float] = []
    monkeypatch.setattr(maths, "CHUNK", 100_000)  # several progress steps from a short run
    for module in (primes, maths):
        monkeypatch.setattr(module, "report", lambda fraction, note="": seen.append(fraction))
    return seen


@pytest.mark.parametrize(
    ("limit", "count"),
    [(2, 0), (3, 1), (10, 4), (100, 25), (1_000_000, 78_498), (10_000_000, 664_579), (100_000_000, 5_761_455)],
)
def test_known_prime_counts(limit, count):
    assert count_primes(limit)["count"] == count


@pytest.mark.slow
@pytest.mark.parametrize(("limit", "count"), [(1_000_000_000, 50_847_534), (2_000_000_000, 98_222_287)])
def test_known_prime_counts_up_to_the_bound(limit, count):
    # ~2.3 s and ~5 s alone on this machine: slow under a full suite on 2 shared cores.
    assert count_primes(limit)["count"] == count


def test_small_ranges_match_miller_rabin():
    rng = random.Random(5)
    ranges = [(0, 0), (0, 3), (2, 3), (3, 4), (4, 5), (7, 8), (8, 9), (9, 100), (44_700, 44_800)]
    ranges += sorted((a, a + rng.randrange(0, 3_000)) for a in (rng.randrange(0, 300_000) for _ in range(40)))
    for start, limit in ranges:
        expected = sum(1 for n in range(start, limit) if is_prime(n))
        assert count_primes(limit, start)["count"] == expected, (start, limit)


def test_a_range_at_the_top_of_the_bound_matches_miller_rabin():
    start, limit = 2_000_000_000 - 60_000, 2_000_000_000
    assert count_primes(limit, start)["count"] == sum(1 for n in range(start, limit) if is_prime(n))


def test_split_ranges_add_up_across_segment_boundaries():
    span = 2 * primes.SEGMENT  # integers covered by one segment of odd numbers
    cuts = [0, 1, 2, 3, span - 1, span, span + 1, 2 * span + 7, 10_000_000]
    assert cuts == sorted(cuts)
    total = sum(count_primes(high, low)["count"] for low, high in zip(cuts, cuts[1:], strict=False))
    assert total == 664_579


def test_base_primes_are_the_primes():
    assert base_primes(1) == []
    assert base_primes(2) == [2]
    assert base_primes(50_000) == [n for n in range(50_001) if is_prime(n)]


def test_count_primes_reports_rising_progress_to_the_end(progress):
    count_primes(20_000_000, 1_000)
    assert len(progress) >= 4
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_sieve_memory_stays_far_below_64_mib_at_the_top_of_the_range():
    """Peak resident memory (VmHWM) of a whole process sieving the last 3*10^7 below 2e9, interpreter included.

    VmHWM belongs to the new process image; getrusage's ru_maxrss would carry over pytest's own peak
    across the fork and exec on Linux.
    """
    code = (
        "import re; from task_def.primes import count_primes\n"
        "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "base = peak(); r = count_primes(2_000_000_000, 1_970_000_000); print(r['count'], base, peak())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, before_kib, peak_kib = map(int, out.stdout.split())
    assert abs(count - 3e7 / math.log(1.985e9)) < 0.02 * count  # the prime number theorem, as a sanity check
    assert peak_kib < 64 * 1024
    assert peak_kib - before_kib < 16 * 1024  # the sieve's own share: three 2 MiB buffers and base primes


def fibonacci_by_addition(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_fibonacci_matches_plain_addition():
    for n in list(range(0, 120)) + [1_000, 4_321, 20_000]:
        exact = fibonacci_by_addition(n)
        result = fibonacci(n)
        assert result["digits"] == len(str(exact)), n
        assert result["last_digits"] == str(exact)[-20:], n
    assert fibonacci(100)["last_digits"] == "54224848179261915075"  # F(100) = 354224848179261915075


def test_large_fibonacci_matches_binet_and_a_modular_recurrence(progress):
    n = 1_000_000
    result = fibonacci(n)
    getcontext().prec = 60
    phi = (1 + Decimal(5).sqrt()) / 2
    binet_digits = int(n * phi.log10() - Decimal(5).sqrt().log10()) + 1
    a, b, mod = 0, 1, 10**20
    for _ in range(n):
        a, b = b, (a + b) % mod
    assert result["digits"] == binet_digits == 208_988
    assert result["last_digits"] == str(a).zfill(20)
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_decimal_digits_is_exact_at_every_power_of_ten():
    for k in [*range(1, 60), 4_299, 4_300, 12_345]:
        assert decimal_digits(10**k - 1) == k
        assert decimal_digits(10**k) == k + 1
    assert decimal_digits(0) == 1


def test_monte_carlo_pi_is_repeatable_and_within_its_error(progress):
    samples, seed = 300_000, 7
    result = monte_carlo_pi(samples, seed)
    rand = random.Random(seed).random
    inside = 0
    for _ in range(samples):
        x, y = rand(), rand()
        inside += math.hypot(x, y) < 1.0
    assert result["inside"] == inside
    assert result["estimate"] == 4 * inside / samples
    assert abs(result["estimate"] - math.pi) < 5 * result["std_error"]
    assert monte_carlo_pi(samples, seed) == result
    assert monte_carlo_pi(samples, seed + 1)["inside"] != inside
    assert progress[-1] == 1.0


def test_sha256_chain_matches_known_vectors_and_hashlib(progress):
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 sha256("abc")
    assert sha256_chain(1, "abc")["digest"] == abc
    assert sha256_chain(2, "abc")["digest"] == hashlib.sha256(bytes.fromhex(abc)).hexdigest()
    digest = "élan".encode()
    for _ in range(300_001):
        digest = hashlib.new("sha256", digest).digest()
    assert sha256_chain(300_001, "élan")["digest"] == digest.hex()
    assert progress[-1] == 1.0 and len(progress) >= 3


def test_sleep_waits_at_least_as_asked_and_reports_progress(monkeypatch):
    seen: list[float] = []
    monkeypatch.setattr(sleep_module, "report", lambda fraction, note="": seen.append(fraction))
    assert sleep_module.sleep(0.6)["slept_s"] >= 0.6
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] >= 1.0
    assert sleep_module.sleep(0)["slept_s"] >= 0
