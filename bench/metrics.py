"""The rows of the table: what each metric means, its plain-RQ anchor and target, and its statistics.

Every round measures both sides back to back, so each round yields one ratio (ours / plain RQ);
the table shows the median over rounds with min and max, for each side and for that ratio.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .rows import Sizes


@dataclass(frozen=True)
class Target:
    """The issue's target: a bound on our median (`ours`) or on the median ratio (`ratio`)."""

    on: str  # "ours" or "ratio"
    op: str  # ">=" or "<="
    value: float
    text: str

    def met(self, ours: float, ratio: float) -> bool:
        figure = ours if self.on == "ours" else ratio
        return figure >= self.value if self.op == ">=" else figure <= self.value


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    digits: int
    anchor: str
    target: Target | None
    #: False where plain RQ's figure can be zero (an idle `rq worker` sends next to nothing): no ratio then
    ratio: bool = True
    #: False where plain RQ has nothing to measure (it has no checkpoints): its column stays "—"
    plain: bool = True


@dataclass
class Series:
    """The per-round values of one metric, for both sides."""

    metric: Metric
    ours: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.plain, strict=False) if b]

    @property
    def complete(self) -> bool:
        return bool(self.ours) and len(self.ours) == len(self.plain)

    def met(self) -> bool | None:
        target = self.metric.target
        if target is None or not self.ours or (target.on == "ratio" and not self.complete):
            return None
        ratio = statistics.median(self.ratios) if self.ratios else float("nan")
        return target.met(statistics.median(self.ours), ratio)


def metrics(sizes: Sizes) -> list[Metric]:
    """The table's rows in the issue's order, labelled with the sizes actually run."""
    workers, jobs, secs = sizes.pool_workers, sizes.sleep_jobs, sizes.sleep_s
    ratio_4 = Target("ratio", ">=", 4, "≥ 4× plain")
    ratio_5 = Target("ratio", ">=", 5, "≥ 5× plain")
    return [
        Metric("enqueue", f"enqueue {sizes.enqueue_jobs:,} no-op jobs (ours batch, plain one by one)", "jobs/s", 0,
               "3.8k", ratio_4),
        *durable_metrics(sizes.enqueue_jobs),
        Metric("noop_1", f"no-op jobs/s, 1 worker ({sizes.noop_jobs:,} jobs, burst)", "jobs/s", 0, "69", ratio_5),
        Metric("noop_2", f"no-op jobs/s, 2 workers ({sizes.noop_jobs:,} jobs, burst)", "jobs/s", 0, "110", ratio_5),
        Metric("noop_pool", f"no-op jobs/s, {workers} workers ({sizes.noop_pool_jobs:,} jobs, burst)", "jobs/s", 0,
               "—", Target("ours", ">=", 2500, "≥ 2,500/s")),
        Metric("cmds_per_job", f"broker commands per no-op job (INFO commandstats; 1 worker, {sizes.command_jobs:,} "
               "jobs)", "cmd", 1, "57–60", Target("ours", "<=", 20, "≤ 20")),
        Metric("lat_p50", "enqueue-to-start latency p50, one idle worker", "ms", 2, "10.4",
               Target("ours", "<=", 1, "≤ 1 ms")),
        Metric("lat_p99", "enqueue-to-start latency p99, one idle worker", "ms", 2, "19.8", None),
        Metric("sleep_eff", f"{jobs} × sleep({secs:g}) on {workers} workers: ideal / makespan", "", 3, "0.90",
               Target("ours", ">=", 0.97, "≥ 0.97")),
        Metric("cpu_speedup", f"{sizes.cpu_jobs} CPU-bound jobs (count_primes {sizes.cpu_limit:,}), 1 → 2 workers",
               "speed-up", 2, "1.98", Target("ours", ">=", 1.9, "≥ 1.9")),
        Metric("fanout", f"count_primes to {sizes.fanout_limit:,}: {sizes.fanout_parts} parts on "
               f"{sizes.fanout_parts} workers vs one job", "speed-up", 2, "—", Target("ours", ">=", 1.8, "≥ 1.8×")),
        Metric("pool_start", f"start {workers} workers until registered", "s", 3, "0.95",
               Target("ours", "<=", 1.0, "≤ 1 s")),
        Metric("pool_stop", f"stop {workers} workers until every process exited", "s", 3, "0.46",
               Target("ours", "<=", 0.5, "≤ 0.5 s")),
        Metric("pool_pss", f"{workers} idle workers (after the sleeps), PSS total", "MiB", 0, "260",
               Target("ours", "<=", 130, "≤ 130 MiB")),
        *idle_metrics(sizes.idle_fleet),
        *long_job_metrics(sizes),
        *thread_metrics(sizes),
    ]  # fmt: skip


def thread_metrics(sizes: Sizes) -> list[Metric]:
    """Many I/O-bound jobs per worker (bench/threads.py); plain RQ runs one job per process: no column."""
    pool, threads = sizes.thread_workers, sizes.threads
    ideal = sizes.thread_sleep_jobs * sizes.thread_sleep_s / (pool * threads)
    scrape = (
        f"{sizes.scrape_jobs} scrapes of a loopback page answering after {sizes.scrape_delay_s * 1000:g} ms, "
        f"{pool} workers: --threads {threads} vs --threads 1 (ours only)"
    )
    sleep = (
        f"{sizes.thread_sleep_jobs} × sleep({sizes.thread_sleep_s:g}) on {pool} workers × {threads} threads: "
        f"makespan (ideal {ideal:g} s; ours only)"
    )
    return [
        Metric("threads_scrape", scrape, "speed-up", 2, "—", Target("ours", ">=", 6, "≥ 6×"), ratio=False,
               plain=False),
        Metric("threads_sleep", sleep, "s", 2, "—", Target("ours", "<=", round(ideal * 1.15, 3),
               f"≤ {ideal * 1.15:.3g} s (ideal + 15 %)"), ratio=False, plain=False),
    ]  # fmt: skip


def long_job_metrics(sizes: Sizes) -> list[Metric]:
    """Checkpoints (bench/resume.py): their cost, and the time an interruption loses with and without resume."""
    job = f"sha256_chain({sizes.long_rounds:,})"
    return [
        Metric("ckpt_cost", f"{job} with checkpoints vs the same job without: extra CPU time, A/B on workers "
               "(ours only)", "%", 2, "—", None, ratio=False, plain=False),
        Metric("ckpt_share", f"{job} with checkpoints: share of its run time spent checkpointing, every call timed "
               "(ours only)", "%", 3, "—", Target("ours", "<=", 2, "≤ 2 %"), ratio=False, plain=False),
        Metric("resume_lost", f"time lost to kill -9 at {sizes.kill_at:.0%} of {job} with a retry: ours resumes "
               "from its checkpoint, plain RQ starts again", "s", 2, "—", None),
    ]  # fmt: skip


def durable_metrics(jobs: int) -> list[Metric]:
    """The confirmation's cost (bench/durable.py): ours confirmed; the plain column is ours unconfirmed."""
    batches = max(jobs // 100, 1)
    one = f"enqueue {jobs:,} no-op jobs in 1 batch: confirmed on disk (WAITAOF) vs unconfirmed (plain column)"
    many = f"enqueue {jobs:,} no-op jobs in {batches:,} batches of 100: confirmed vs unconfirmed (plain column)"
    return [
        Metric("durable_one", one, "jobs/s", 0, "—", Target("ratio", ">=", 0.9, "≥ 0.9× unconfirmed")),
        Metric("durable_many", many, "jobs/s", 0, "—", None),
        Metric("durable_ms", "the confirmation after EXEC, per batch (ours; the unconfirmed side spends none)", "ms",
               2, "—", None, ratio=False),
    ]  # fmt: skip


def idle_metrics(fleet: int) -> list[Metric]:
    """Idle broker traffic (bench/idle.py); anchors: the workbench before the fleet-cost work (issue 13)."""
    anchors = {("one", 1): "31", ("one", 100): "330", ("fleet", 1): "—", ("fleet", 100): "2,150"}
    rows = []
    for key, count in (("one", 1), ("fleet", fleet)):
        for queues in (1, 100):
            label = f"idle broker commands/s: {count} consumer(s), {queues} queue(s) in the broker"
            rows.append(Metric(f"idle_{key}_{queues}", label, "cmd/s", 1, anchors[(key, queues)], None, ratio=False))
    flat = Target("ours", "<=", 1.2, "≤ 1.2")
    label = f"idle cost, {fleet} consumers: 100 queues ÷ 1 queue"
    return [*rows, Metric("idle_flat", label, "", 2, "≈ 10", flat)]


def fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def spread(values: list[float], digits: int) -> str:
    """`median (min–max)` over rounds."""
    if not values:
        return "—"
    med, low, high = statistics.median(values), min(values), max(values)
    if len(values) == 1:
        return fmt(med, digits)
    return f"{fmt(med, digits)} ({fmt(low, digits)}–{fmt(high, digits)})"
