"""The measurements. Each experiment runs one side once and returns {metric key: value}.

Every experiment starts its own workers on a fresh queue and stops them before it returns, so a
round of one side never overlaps the other side's. Sizes come from `Sizes` (full or smoke).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from .records import busy_span_s, finished, makespan_s, results, wait_ended
from .sides import COUNT_PRIMES, OURS, SLEEP, BenchError, Side, plain_queue, wait_registered

NOOP = {"seconds": 0}
#: After the last worker registered, RQ workers still run start-up maintenance; let it pass before sampling.
IDLE_SETTLE_S = 0.5
#: Between latency samples the worker must be idle again, blocked on the queue.
LATENCY_GAP_S = 0.01


@dataclass(frozen=True)
class Sizes:
    rounds: int
    enqueue_jobs: int
    noop_jobs: int
    latency_samples: int
    pool_workers: int
    sleep_jobs: int
    sleep_s: float
    cpu_jobs: int
    cpu_limit: int
    fanout_limit: int
    fanout_parts: int = 2
    idle_window_s: float = 8.0  # how long an idle fleet's broker traffic is counted
    idle_fleet: int = 10  # consumers in the larger idle fleet
    noop_pool_jobs: int = 1_200  # no-op jobs for the pool of `pool_workers`
    command_jobs: int = 200  # no-op jobs whose broker commands are counted
    long_rounds: int = 6_000_000  # the long job of bench/resume.py: sha256_chain, ~3 s alone here
    kill_at: float = 2 / 3  # ...interrupted once its progress passes this fraction
    thread_workers: int = 10  # many I/O-bound jobs per worker (bench/threads.py): the pool...
    threads: int = 8  # ...its jobs per worker (--threads)...
    scrape_jobs: int = 400  # ...scrapes of a loopback page...
    scrape_delay_s: float = 0.25  # ...that answers after this long...
    thread_sleep_jobs: int = 400  # ...and sleeps of this length on every slot
    thread_sleep_s: float = 0.5


#: The issue's sizes. count_primes(100,000,000) takes ~0.25 s here: long enough to dwarf per-job overhead.
FULL = Sizes(5, 10_000, 300, 100, 10, 40, 0.5, 8, 100_000_000, 2_000_000_000)
#: Tiny sizes that exercise every code path in seconds (run by the test suite; figures meaningless).
SMOKE = Sizes(
    1, 200, 30, 8, 3, 6, 0.1, 4, 2_000_000, 4_000_000, idle_window_s=0.5, idle_fleet=2, long_rounds=2_000_000,
    kill_at=0.2, noop_pool_jobs=30, command_jobs=20, thread_workers=2, threads=3, scrape_jobs=12,
    scrape_delay_s=0.05, thread_sleep_jobs=12, thread_sleep_s=0.1,
)  # fmt: skip


@dataclass
class Context:
    conn: Redis
    url: str
    env: dict[str, str]
    logdir: Path
    sizes: Sizes
    round: int = 0

    def queue(self, experiment: str, side: Side) -> str:
        """A fresh queue per experiment, side and round, so registrations never mix."""
        return f"bench-{experiment}-{side.key}-{self.round}"


def enqueue_rate(ctx: Context, side: Side) -> dict[str, float]:
    """Ours: the producer's pipelined batch path. Plain RQ: `Queue.enqueue` one job at a time."""
    count, queue = ctx.sizes.enqueue_jobs, ctx.queue("enqueue", side)
    started = time.perf_counter()
    if side.key == OURS:
        side.batch(ctx.conn, queue, SLEEP, [NOOP] * count)
    else:
        plain = plain_queue(queue, ctx.conn)
        for _ in range(count):
            plain.enqueue(SLEEP, **NOOP)
    elapsed = time.perf_counter() - started
    queued = plain_queue(queue, ctx.conn).count
    if queued != count:
        raise BenchError(f"{side.title} enqueued {queued} of {count} jobs.")
    return {"enqueue": count / elapsed}


def noop_throughput(ctx: Context, side: Side) -> dict[str, float]:
    """No-op jobs queued first, then 1, 2 and a pool of burst workers drain them; jobs / (last end - first start)."""
    figures = {}
    for workers in (1, 2, ctx.sizes.pool_workers):
        count = ctx.sizes.noop_jobs if workers <= 2 else ctx.sizes.noop_pool_jobs
        queue = ctx.queue(f"noop{workers}", side)
        ids = side.batch(ctx.conn, queue, SLEEP, [NOOP] * count)
        group = side.start(ctx.url, queue, workers, ctx.logdir, ctx.env, burst=True)
        try:
            group.wait_finished(timeout_s=60 + count / 10)
        finally:
            group.close()
        key = f"noop_{workers}" if workers <= 2 else "noop_pool"
        figures[key] = count / busy_span_s(finished(ctx.conn, ids, side.title))
    return figures


def latency(ctx: Context, side: Side) -> dict[str, float]:
    """One idle worker; jobs enqueued one at a time, each after the previous ended: started_at - enqueued_at."""
    queue = ctx.queue("latency", side)
    group = side.start(ctx.url, queue, 1, ctx.logdir, ctx.env, burst=False)
    ids = []
    try:
        wait_registered(ctx.conn, queue, 1, group)
        time.sleep(IDLE_SETTLE_S)
        for sample in range(ctx.sizes.latency_samples):
            ids += side.batch(ctx.conn, queue, SLEEP, [NOOP]) if side.key == OURS else _enqueue_one(ctx, queue)
            wait_ended(ctx.conn, queue, sample + 1, timeout_s=30, interval_s=0.001)
            time.sleep(LATENCY_GAP_S)
        found = finished(ctx.conn, ids, side.title)
    finally:
        group.close()
    waits = [(r.started - r.enqueued).total_seconds() * 1000 for r in found]
    return {"lat_p50": statistics.median(waits), "lat_p99": percentile(waits, 99)}


def pool_of_ten(ctx: Context, side: Side) -> dict[str, float]:
    """Start N workers (timed until registered), run the sleeps, weigh them idle, stop them (timed)."""
    size, jobs, seconds = ctx.sizes.pool_workers, ctx.sizes.sleep_jobs, ctx.sizes.sleep_s
    queue = ctx.queue("pool", side)
    group = side.start(ctx.url, queue, size, ctx.logdir, ctx.env, burst=False)
    try:
        start_s = wait_registered(ctx.conn, queue, size, group)
        time.sleep(IDLE_SETTLE_S)
        ids = side.batch(ctx.conn, queue, SLEEP, [{"seconds": seconds}] * jobs)
        wait_ended(ctx.conn, queue, jobs, timeout_s=60 + jobs * seconds)
        ideal_s = jobs * seconds / size
        efficiency = ideal_s / makespan_s(finished(ctx.conn, ids, side.title))
        # Weighed idle after work, not fresh: a worker that imports the catalog on its first job
        # only shows its steady-state size once it has run one.
        time.sleep(IDLE_SETTLE_S)
        pss_mib = group.pss_bytes() / 2**20
        everything = [p.pid for p in group.tree()]
        stopping = time.monotonic()
        group.interrupt()
        group.wait_exited(everything)
        stop_s = time.monotonic() - stopping
    finally:
        group.close()
    return {"pool_start": start_s, "pool_stop": stop_s, "pool_pss": pss_mib, "sleep_eff": efficiency}


def cpu_speedup(ctx: Context, side: Side) -> dict[str, float]:
    """The same CPU-bound jobs on 1 then 2 idle workers: makespan(1) / makespan(2)."""
    spans = {}
    for workers in (1, 2):
        queue = ctx.queue(f"cpu{workers}", side)
        group = side.start(ctx.url, queue, workers, ctx.logdir, ctx.env, burst=False)
        try:
            wait_registered(ctx.conn, queue, workers, group)
            ids = side.batch(ctx.conn, queue, COUNT_PRIMES, [{"limit": ctx.sizes.cpu_limit}] * ctx.sizes.cpu_jobs)
            wait_ended(ctx.conn, queue, len(ids), timeout_s=600)
            spans[workers] = makespan_s(finished(ctx.conn, ids, side.title))
        finally:
            group.close()
    return {"cpu_speedup": spans[1] / spans[2]}


def fanout(ctx: Context, side: Side) -> dict[str, float]:
    """count_primes to the limit as one job, then split over as many workers; same pool of idle workers.

    Ours uses the producer's fan-out (`workbench.fanout.enqueue_split`: chunk jobs plus a combining
    job RQ starts when they end), timed to the combined answer. Plain RQ gets the same chunks as
    separate jobs, timed to the last chunk; summing them is left to its caller.
    """
    limit, parts = ctx.sizes.fanout_limit, ctx.sizes.fanout_parts
    queue = ctx.queue("fanout", side)
    group = side.start(ctx.url, queue, parts, ctx.logdir, ctx.env, burst=False)
    try:
        wait_registered(ctx.conn, queue, parts, group)
        whole = side.batch(ctx.conn, queue, COUNT_PRIMES, [{"limit": limit}])
        wait_ended(ctx.conn, queue, 1, timeout_s=900)
        one_s = makespan_s(finished(ctx.conn, whole, side.title))
        split, answer = _split(ctx, side, queue, limit, parts)
        wait_ended(ctx.conn, queue, 1 + len(split), timeout_s=900)
        fan_s = makespan_s(finished(ctx.conn, split, side.title))
    finally:
        group.close()
    total = sum(r["count"] for r in results(ctx.conn, answer))
    expected = results(ctx.conn, whole)[0]["count"]
    if total != expected:
        raise BenchError(f"{side.title} fan-out counted {total:,} primes, the single job {expected:,}.")
    return {"fanout": one_s / fan_s}


def _split(ctx: Context, side: Side, queue: str, limit: int, parts: int) -> tuple[list[str], list[str]]:
    """Enqueue the split; return every job id and the ids whose results add up to the answer."""
    if side.key == OURS:
        from workbench.catalog_load import load_catalog

        CATALOG = load_catalog()  # noqa: N806 - the catalog, read-only
        from workbench.fanout import COMBINE_TASK, enqueue_split
        from workbench.producer import make_batch

        batch = make_batch(CATALOG["count_primes"], {"start": 0, "limit": limit}, queue=queue)
        fan = enqueue_split(ctx.conn, batch, parts, CATALOG[COMBINE_TASK])
        return [job.id for job in fan.jobs], [fan.combine.id]
    ids = side.batch(ctx.conn, queue, COUNT_PRIMES, split_range(limit, parts))
    return ids, ids


def split_range(limit: int, parts: int) -> list[dict[str, int]]:
    """[0, limit) cut into `parts` contiguous ranges of (nearly) equal length, as count_primes params."""
    bounds = [limit * i // parts for i in range(parts + 1)]
    return [{"start": low, "limit": high} for low, high in zip(bounds, bounds[1:], strict=False)]


def percentile(values: list[float], pct: int) -> float:
    """The pct-th percentile, interpolated (statistics' inclusive method); the max for tiny samples."""
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _enqueue_one(ctx: Context, queue: str) -> list[str]:
    return [plain_queue(queue, ctx.conn).enqueue(SLEEP, **NOOP).id]


from .commands import commands_per_job  # noqa: E402 - broker commands per job (INFO commandstats)
from .durable import durable_enqueue  # noqa: E402 - the confirmation's rows live in their own module
from .idle import idle_cost  # noqa: E402 - the idle fleet's rows live in their own module
from .resume import long_jobs  # noqa: E402 - and so do the long job's (checkpoints, resume)
from .threads import thread_rows  # noqa: E402 - and many I/O-bound jobs per worker (--threads)

Experiment = Callable[[Context, Side], dict[str, float]]
#: Run in this order within each round; each one alternates which side goes first from round to round.
EXPERIMENTS: tuple[tuple[str, Experiment], ...] = (
    ("enqueue", enqueue_rate),
    ("durable", durable_enqueue),
    ("noop", noop_throughput),
    ("latency", latency),
    ("commands", commands_per_job),
    ("pool", pool_of_ten),
    ("cpu", cpu_speedup),
    ("fanout", fanout),
    ("idle", idle_cost),
    ("long", long_jobs),
    ("threads", thread_rows),
)
