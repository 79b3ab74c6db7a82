"""Job statistics kept by the broker itself, cheap to write and cheap to read.

Workers record every job's end inside the transaction that finishes it (`record_end`, called
from `WorkbenchWorker.increment_*_job_count`, which RQ calls inside that transaction): a few
HINCRBYs on small keys, no extra round trip. Readers (the dashboard, /metrics) read a bounded
number of keys, never the registries. Keys, all bounded:

- `workbench:stats:q:<queue>:<minute>`   hash, jobs that ended that minute by outcome (TTL 2 h);
- `workbench:stats:t:<task>:m<minute>`   hash, duration histogram of that minute: `b<i>` -> count (TTL 2 h);
- `workbench:stats:t:<task>:h<hour>`     hash, the same for an hour (TTL 25 h);
- `workbench:stats:max:<task>:<hour>`    sorted set, minute -> longest duration ending then (ZADD GT; TTL 25 h);
- `workbench:stats:total:<task>`         hash, since the broker's start: `b<i>`, `sum`, `<outcome>:<queue>`
                                         counts (Prometheus counters; bounded by the catalog and the queues);
- `workbench:stats:tasks`                set of task names seen;
- `workbench:stats:depth:<queue>:<hour>` hash, minute -> "queued,started", sampled once a minute (TTL 2 h)
                                         by whoever holds that minute's lease (`sample_depths`);
- `workbench:error:<job id>`             the end of a failed job's error text, for search (TTL: the job's).

Durations go into logarithmic buckets (edges 1 ms x 10^(i/20): about 12 % wide), so percentiles
are estimates within one bucket; the maximum is exact. Task names are the catalog's; anything
else counts as "other", so a forged job record cannot grow the key space.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from redis import Redis
from redis.client import Pipeline

from . import defaults
from .jobs import catalog_spec
from .known_queues import all_queues
from .text import as_text

PREFIX = defaults.KEY_PREFIX + "stats:"
#: `workbench:error:<job id>`: the last lines of a failed job's error in plain text, for search
#: (RQ keeps the traceback compressed); written as the job fails, removed when it later finishes.
ERROR_PREFIX = defaults.KEY_PREFIX + "error:"
TASKS_KEY = PREFIX + "tasks"
#: Outcomes counted per queue and minute.
FINISHED, FAILED, STOPPED, RETRIED = "finished", "failed", "stopped", "retried"
OUTCOMES = (FINISHED, FAILED, STOPPED, RETRIED)
#: The task name of jobs that name no catalog task.
OTHER_TASK = "other"
#: Histogram: bucket i holds durations in (BASE * RATIO**(i-1), BASE * RATIO**i]; bucket 0 all <= 1 ms.
BUCKET_BASE_S = 0.001
BUCKETS_PER_DECADE = 20
RATIO = 10 ** (1 / BUCKETS_PER_DECADE)
#: 1 ms .. 10^5 s (past the longest job timeout, a day).
MAX_BUCKET = 8 * BUCKETS_PER_DECADE


def minute_of(moment: float) -> int:
    return int(moment // 60)


def bucket_of(seconds: float) -> int:
    if seconds <= BUCKET_BASE_S:
        return 0
    return min(MAX_BUCKET, math.ceil(math.log10(seconds / BUCKET_BASE_S) * BUCKETS_PER_DECADE - 1e-9))


def bucket_edge(index: int) -> float:
    """The upper edge, in seconds, of histogram bucket `index`."""
    return BUCKET_BASE_S * RATIO**index


def queue_key(queue: str, minute: int) -> str:
    return f"{PREFIX}q:{queue}:{minute}"


def minute_hist_key(task: str, minute: int) -> str:
    return f"{PREFIX}t:{task}:m{minute}"


def hour_hist_key(task: str, hour: int) -> str:
    return f"{PREFIX}t:{task}:h{hour}"


def max_key(task: str, hour: int) -> str:
    return f"{PREFIX}max:{task}:{hour}"


def total_key(task: str) -> str:
    return f"{PREFIX}total:{task}"


def depth_key(queue: str, hour: int) -> str:
    return f"{PREFIX}depth:{queue}:{hour}"


def task_name(func_name: str | None) -> str:
    """The catalog name of a job's function, or OTHER_TASK."""
    spec = catalog_spec(func_name)
    return spec.name if spec is not None else OTHER_TASK


def sample_depths(connection: Redis, now: float | None = None) -> bool:
    """Record every queue's depth for this minute, once across all samplers (a lease per minute).

    Returns whether this call took the sample.
    """
    moment = time.time() if now is None else now
    minute = minute_of(moment)
    if not connection.set(f"{PREFIX}depth-lease:{minute}", "1", nx=True, ex=120):
        return False
    queues = all_queues(connection)
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.zcard(queue.started_job_registry.key)
        sizes = pipe.execute(raise_on_error=False) if queues else []
    with connection.pipeline() as pipe:  # a transaction: no moment where a sample has no TTL
        for index, queue in enumerate(queues):
            queued, started = sizes[2 * index], sizes[2 * index + 1]
            if isinstance(queued, Exception) or isinstance(started, Exception):
                continue  # a queue key of another type (forged): no sample for it, the others are taken
            key = depth_key(queue.name, minute // 60)
            pipe.hset(key, str(minute), f"{queued},{started}")
            pipe.expire(key, defaults.STATS_DEPTH_TTL_S)
        pipe.execute(raise_on_error=False)  # a depth key of another type costs that queue's sample only
    return True


# -- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Minute:
    """One minute of one queue."""

    minute: int
    counts: dict[str, int]
    queued: int | None  # None: no sample that minute
    started: int | None


def queue_minutes(connection: Redis, queues: Iterable[str], now: float | None = None, span: int = 60) -> dict:
    """Per queue, the last `span` minutes (oldest first): ended jobs by outcome and sampled depth."""
    last = minute_of(time.time() if now is None else now)
    minutes = list(range(last - span + 1, last + 1))
    hours = sorted({m // 60 for m in minutes})
    names = list(queues)
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            for minute in minutes:
                pipe.hgetall(queue_key(name, minute))
            for hour in hours:
                pipe.hgetall(depth_key(name, hour))
        replies = iter(_replies(pipe))
    result = {}
    for name in names:
        counts = [_ints(next(replies)) for _ in minutes]
        depths: dict[int, tuple[int, int]] = {}
        for _ in hours:
            for raw_minute, raw_value in next(replies).items():
                parsed = _depth(raw_minute, raw_value)
                if parsed:
                    depths[parsed[0]] = parsed[1]
        result[name] = [
            Minute(minute, {o: c.get(o, 0) for o in OUTCOMES}, *depths.get(minute, (None, None)))
            for minute, c in zip(minutes, counts, strict=True)
        ]
    return result


@dataclass(frozen=True)
class Durations:
    count: int
    p50: float | None
    p95: float | None
    max: float | None

    def as_dict(self) -> dict:
        return {"count": self.count, "p50_s": self.p50, "p95_s": self.p95, "max_s": self.max}


def task_names(connection: Redis) -> list[str]:
    try:
        members = connection.smembers(TASKS_KEY)
    except redis.ResponseError:  # the key holds another type (forged): no task has figures
        return []
    return sorted(as_text(raw, errors="replace") for raw in members)


def task_durations(connection: Redis, now: float | None = None) -> dict[str, dict[str, Durations]]:
    """Per task: duration p50 / p95 / max over the last hour and the last 24 hours."""
    last = minute_of(time.time() if now is None else now)
    hour = last // 60
    minutes = range(last - 59, last + 1)
    hours = range(hour - 24, hour + 1)
    tasks = task_names(connection)
    with connection.pipeline(transaction=False) as pipe:
        for task in tasks:
            for minute in minutes:
                pipe.hgetall(minute_hist_key(task, minute))
            for h in hours:
                pipe.hgetall(hour_hist_key(task, h))
            for h in hours:
                pipe.zrange(max_key(task, h), 0, -1, withscores=True)
        replies = iter(_replies(pipe))
    result = {}
    for task in tasks:
        hour_hist = _merge(next(replies) for _ in minutes)
        day_hist = _merge(next(replies) for _ in hours)
        longest = [(int(m), score) for _ in hours for m, score in next(replies) if m.isdigit()]
        hour_max = max((s for m, s in longest if m >= last - 59), default=None)
        day_max = max((s for m, s in longest if m >= last - 24 * 60 + 1), default=None)
        result[task] = {"hour": _summary(hour_hist, hour_max), "day": _summary(day_hist, day_max)}
    return result


@dataclass(frozen=True)
class Totals:
    """A task's cumulative figures (Prometheus counters and histogram)."""

    task: str
    ended: dict[tuple[str, str], int]  # (outcome, queue) -> count
    buckets: dict[int, int]
    sum_s: float

    def cumulative(self, edges: Iterable[int]) -> list[tuple[float, int]]:
        """(upper edge in seconds, jobs at or under it) for the given bucket indexes."""
        return [(bucket_edge(i), sum(c for b, c in self.buckets.items() if b <= i)) for i in edges]

    @property
    def count(self) -> int:
        return sum(self.buckets.values())


def totals(connection: Redis) -> list[Totals]:
    tasks = task_names(connection)
    with connection.pipeline(transaction=False) as pipe:
        for task in tasks:
            pipe.hgetall(total_key(task))
        replies = _replies(pipe)
    found = []
    for task, raw in zip(tasks, replies, strict=True):
        ended, buckets, total = {}, {}, 0.0
        for key, value in raw.items():
            name = key.decode(errors="replace")
            try:
                if name == "sum":
                    total = float(value)
                elif name.startswith("b") and name[1:].isdigit():
                    buckets[int(name[1:])] = int(value)
                elif ":" in name:
                    outcome, queue = name.split(":", 1)
                    ended[(outcome, queue)] = int(value)
            except ValueError:
                continue  # a field someone else wrote: not ours to count
        found.append(Totals(task, ended, buckets, total))
    return found


def _replies(pipe: Pipeline) -> list:
    """A reading pipeline's replies, a key of another type (WRONGTYPE: forged) read as empty: one bad key
    costs its own figures, never the trends page, the queue list or /metrics."""
    return [{} if isinstance(reply, Exception) else reply for reply in pipe.execute(raise_on_error=False)]


def _ints(raw: dict) -> dict[str, int]:
    out = {}
    for key, value in raw.items():
        try:
            out[key.decode(errors="replace")] = int(value)
        except ValueError:
            continue
    return out


def _depth(raw_minute: bytes, raw_value: bytes) -> tuple[int, tuple[int, int]] | None:
    try:
        queued, started = raw_value.decode().split(",")
        return int(raw_minute), (int(queued), int(started))
    except ValueError:
        return None


def _merge(hashes: Iterable[dict]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for raw in hashes:
        for key, count in _ints(raw).items():
            if key.startswith("b") and key[1:].isdigit():
                merged[int(key[1:])] = merged.get(int(key[1:]), 0) + count
    return merged


def percentile(hist: dict[int, int], fraction: float) -> float | None:
    """The upper edge of the bucket holding the `fraction` quantile (an estimate within one bucket)."""
    count = sum(hist.values())
    if count == 0:
        return None
    rank = max(1, math.ceil(fraction * count))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return bucket_edge(index)
    return bucket_edge(max(hist))


def _summary(hist: dict[int, int], longest: float | None) -> Durations:
    def capped(value: float | None) -> float | None:
        if value is None:
            return None
        value = round(value, 4)
        return min(value, longest) if longest is not None else value

    return Durations(sum(hist.values()), capped(percentile(hist, 0.5)), capped(percentile(hist, 0.95)), longest)


# The writing side (workers, inside the finishing transaction) lives in its own module.
from .stats_record import RECORD_SCRIPT, record_end, record_job_end  # noqa: E402, F401
