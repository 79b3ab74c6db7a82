"""The task catalog: every task a worker may run, with its parameters, bounds and timeout.

Adding a task is one function in a module here plus its entry in CATALOG.
"""

from __future__ import annotations

from workbench import defaults
from workbench.catalog import FLOAT, INT, STR, Param, TaskSpec

from .combine import combine_counts
from .maths import fibonacci, monte_carlo_pi, sha256_chain
from .primes import count_primes
from .scrape import scrape
from .sleep import sleep
from .web_guard import url_param

#: Largest seed: any 64-bit signed value, so seeds from other tools fit.
MAX_SEED = 2**63 - 1

CATALOG: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sleep",
            func=sleep,
            description="Sleep for a while, reporting progress (stands in for slow I/O).",
            params=(Param("seconds", FLOAT, 1.0, "how long to sleep", 0, 3600),),
            timeout_s=3700,
            io_bound=True,
            shown=("slept_s",),
        ),
        TaskSpec(
            name="count_primes",
            func=count_primes,
            description="Count the primes in [start, limit) with an odd-only segmented sieve.",
            params=(
                Param("limit", INT, 1_000_000, "count primes below this", 2, 2_000_000_000),
                Param("start", INT, 0, "count primes from here", 0, 2_000_000_000),
            ),
            timeout_s=600,  # the full 2e9 range takes ~5 s alone here; ten at once on 2 cores, under a minute
            shown=("count", "start", "limit"),
        ),
        TaskSpec(
            name="fibonacci",
            func=fibonacci,
            description="The n-th Fibonacci number by fast doubling: its digit count and last 20 digits.",
            params=(Param("n", INT, 1_000_000, "which Fibonacci number", 0, 20_000_000),),
            timeout_s=300,  # n = 2e7 (4.2 million digits) takes ~11 s alone here
            shown=("digits", "last_digits"),
        ),
        TaskSpec(
            name="monte_carlo_pi",
            func=monte_carlo_pi,
            description="Estimate pi from random points in the unit square (repeatable with a seed).",
            params=(
                Param("samples", INT, 1_000_000, "random points to draw", 1, 100_000_000),
                Param("seed", INT, 0, "random seed", 0, MAX_SEED),
            ),
            timeout_s=600,  # 1e8 samples take ~25 s alone here
            shown=("estimate", "std_error"),
        ),
        TaskSpec(
            name="sha256_chain",
            func=sha256_chain,
            description="Hash a text with sha256, then hash the digest again, n times in all.",
            params=(
                Param("rounds", INT, 1_000_000, "how many times to hash", 1, 100_000_000),
                Param("data", STR, "workbench", "the text hashed first", maximum=1000),
            ),
            timeout_s=900,  # 1e8 rounds take ~50 s alone here
            shown=("digest",),
        ),
        TaskSpec(
            name="scrape",
            func=scrape,
            description="Fetch one public web page; return its status, title, word and link counts, headings.",
            params=(Param("url", STR, None, "http(s) URL of the page", maximum=2048, required=True, check=url_param),),
            timeout_s=defaults.SCRAPE_JOB_TIMEOUT_S,
            io_bound=True,
            shown=("title", "words", "status", "final_url"),
        ),
        TaskSpec(
            name="combine_counts",
            func=combine_counts,
            description="Sum the chunks of a split count_primes (enqueued by producer --split N).",
            timeout_s=60,
            extra={"internal": True},
            shown=("count", "chunks"),
        ),
    )
}

#: The dotted paths workers accept; anything else fails as "not a catalog task".
ALLOWED_FUNCS: dict[str, TaskSpec] = {spec.func_path: spec for spec in CATALOG.values()}
#: Dotted paths a job may name as its RQ success/failure/stopped callback; workers import no others.
ALLOWED_CALLBACKS: frozenset[str] = frozenset()
