"""The task catalog: every task a worker may run, with its parameters, bounds and timeout.

Adding a task is one function in a module here plus its entry in CATALOG.
"""

from __future__ import annotations

from workbench.catalog import FLOAT, INT, Param, TaskSpec

from .combine import combine_counts
from .primes import count_primes
from .sleep import sleep

CATALOG: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sleep",
            func=sleep,
            description="Sleep for a while, reporting progress (stands in for slow I/O).",
            params=(Param("seconds", FLOAT, 1.0, "how long to sleep", 0, 3600),),
            timeout_s=3700,
        ),
        TaskSpec(
            name="count_primes",
            func=count_primes,
            description="Count the primes in [start, limit) with a segmented sieve.",
            params=(
                Param("limit", INT, 1_000_000, "count primes below this", 2, 2_000_000_000),
                Param("start", INT, 0, "count primes from here", 0, 2_000_000_000),
            ),
            timeout_s=600,
        ),
        TaskSpec(
            name="combine_counts",
            func=combine_counts,
            description="Sum the chunks of a split count_primes (enqueued by producer --split N).",
            timeout_s=60,
            extra={"internal": True},
        ),
    )
}

#: The dotted paths workers accept; anything else fails as "not a catalog task".
ALLOWED_FUNCS: dict[str, TaskSpec] = {spec.func_path: spec for spec in CATALOG.values()}
