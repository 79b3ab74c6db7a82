"""Enqueueing catalog tasks as one all-or-nothing transaction, and following them until they end.

A batch goes in now (onto its queue) or later (`at`: into RQ's ScheduledJobRegistry, which a
consumer's scheduler moves onto the queue when the time comes, see `workbench.schedules`).
Nothing here prints: the console layer (`workbench.console.producer`) shows what these return.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis
from redis import Redis
from redis.sentinel import MasterNotFoundError
from rq import Retry
from rq.job import JobStatus
from rq.queue import EnqueueData, Queue

from . import batches, defaults, durability, validators
from .broker import broker_errors, server_address
from .catalog import TaskSpec
from .checkpoint import FIELD as CHECKPOINT_FIELD
from .errors import BrokerUnavailable, UsageError, WorkbenchError
from .jobs import SERIALIZER, CatalogJob, make_queue
from .known_workers import worker_keys
from .progress import read as read_progress
from .progress import resumed as read_resumed
from .results import UNREADABLE, Outcome, outcomes, status_counts

__all__ = [
    "UNREADABLE", "Batch", "Enqueued", "Outcome", "Snapshot", "broker_errors", "enqueue", "follow", "job_data",
    "listening_workers", "make_batch", "outcomes", "record_batch", "status_counts", "transaction",
]  # fmt: skip

#: States a job never leaves on its own.
DONE_STATES = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
#: A deferred job whose dependency ended in one of these is never enqueued by RQ.
BLOCKING_STATES = {JobStatus.STOPPED, JobStatus.CANCELED}


@dataclass(frozen=True)
class Batch:
    """What to enqueue: one task with validated parameters, `count` times."""

    spec: TaskSpec
    params: Mapping[str, Any]
    queue: str = defaults.DEFAULT_QUEUE
    count: int = 1
    timeout_s: int | None = None
    retries: int = 0
    at_front: bool = False
    #: The batch's name in the broker (`workbench.batches`); fresh for every Batch made.
    batch_id: str = field(default_factory=batches.new_id)
    #: Seconds to wait before each retry (RQ's Retry interval; the last one repeats); empty: at once.
    retry_intervals: tuple[int, ...] = ()

    @property
    def timeout(self) -> int:
        """The job timeout: the one asked for, else the task's own (never RQ's silent 180 s)."""
        return self.timeout_s or self.spec.timeout_s

    @property
    def description(self) -> str:
        return _describe(self.spec.name, self.params)

    @property
    def retry(self) -> Retry | None:
        if not self.retries:
            return None
        return Retry(max=self.retries, interval=list(self.retry_intervals) or 0)


def make_batch(
    spec: TaskSpec,
    raw_params: Mapping[str, object],
    *,
    queue: object = None,
    count: object = None,
    timeout: object = None,
    retries: object = None,
    retry_interval: object = None,
    at_front: bool = False,
) -> Batch:
    """Validate raw values (flags or answers) into a Batch; raises UsageError before any broker use."""
    retry_count = validators.retries(retries) if retries is not None else 0
    if retry_count and not spec.retry_safe:
        raise UsageError(f"task {spec.name} is not safe to retry, so --retries must be 0.")
    intervals = validators.retry_intervals(retry_interval) if retry_interval is not None else []
    if intervals and not retry_count:
        raise UsageError("--retry-interval sets the wait before each retry, so it needs --retries 1 or more.")
    return Batch(
        spec=spec,
        params=spec.validate(raw_params),
        queue=validators.queue_name(queue) if queue is not None else defaults.DEFAULT_QUEUE,
        count=validators.job_count(count) if count is not None else 1,
        timeout_s=validators.job_timeout(timeout) if timeout is not None else None,
        retries=retry_count,
        at_front=at_front,
        retry_intervals=tuple(intervals),
    )


def job_data(queue: Queue, batch: Batch, params: Mapping[str, Any] | None = None, **extra: Any) -> EnqueueData:
    """RQ's description of one job of the batch (optionally with other params or RQ options)."""
    return queue.prepare_data(
        batch.spec.func_path,
        kwargs=dict(batch.params if params is None else params),
        timeout=batch.timeout,
        result_ttl=defaults.RESULT_TTL_S,
        failure_ttl=defaults.FAILURE_TTL_S,
        description=batch.description if params is None else _describe(batch.spec.name, params),
        retry=batch.retry,
        at_front=batch.at_front,
        meta={"task": batch.spec.name, "batch": batch.batch_id},
        **extra,
    )


def _describe(name: str, params: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


class Enqueued(list[CatalogJob]):
    """The jobs of a batch as enqueued, and what the broker confirmed about them (None: not asked)."""

    confirmation: durability.Confirmation | None = None


def transaction(connection: Redis, confirm: bool = True) -> Any:
    """The MULTI/EXEC pipeline an enqueue goes in: confirmed durable after EXEC (`workbench.durability`)."""
    return durability.transaction(connection) if confirm else connection.pipeline(transaction=True)


def enqueue(connection: Redis, batch: Batch, at: datetime | None = None, *, confirm: bool = True) -> Enqueued:
    """Enqueue the whole batch in one MULTI/EXEC pipeline: every job is queued, or none is.

    With `at`, the jobs go into RQ's ScheduledJobRegistry for that moment instead (a consumer's
    scheduler moves them onto the queue then). A refused or interrupted transaction leaves nothing
    behind: Redis discards a MULTI whose EXEC never arrives, and the job ids are only returned
    once EXEC has been answered. Then, on the same connection, the broker confirms the batch is on
    disk and on a replica where one exists; the result's `confirmation` says what it confirmed.
    """
    with transaction(connection, confirm) as pipe:
        jobs = Enqueued(stage(pipe, connection, batch, at))
        with broker_errors(connection, "enqueueing; nothing was queued"), maybe_queued(connection, batch.batch_id):
            pipe.execute()
        jobs.confirmation = getattr(pipe, "confirmation", None)
    return jobs


@contextmanager
def maybe_queued(connection: Redis, batch_id: str) -> Iterator[None]:
    """A broker lost once the transaction was sent: its EXEC may have been carried out with the answer
    lost, so say "may or may not be queued" (a broker that could not even be reached queued nothing)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        if isinstance(exc, MasterNotFoundError) or "connecting to" in reason.lower():
            raise
        raise BrokerUnavailable(
            f"lost the broker at {server_address(connection)} while enqueueing batch {batch_id}, so it may or "
            f"may not be queued ({reason}); see python producer_main.py --batch {batch_id}."
        ) from None


def stage(pipe: Any, connection: Redis, batch: Batch, at: datetime | None = None) -> list[CatalogJob]:
    """Queue the batch's jobs and its record on `pipe` (an open MULTI), without executing it."""
    queue = make_queue(batch.queue, connection)
    data = [job_data(queue, batch) for _ in range(batch.count)]
    with broker_errors(connection, "enqueueing; nothing was queued"):
        if at is None:
            jobs = cast(list[CatalogJob], queue.enqueue_many(data, pipeline=pipe))  # the queue's job class
        else:
            jobs = [_schedule(queue, item, at, pipe) for item in data]
    delay = max(int((at - datetime.now(UTC)).total_seconds()), 0) if at is not None else 0
    record_batch(pipe, batch, [job.id for job in jobs], delay_s=delay)
    return jobs


def _schedule(queue: Queue, item: EnqueueData, at: datetime, pipe: Any) -> CatalogJob:
    """One job into the queue's ScheduledJobRegistry (RQ's `enqueue_at`, inside our transaction)."""
    job = queue.create_job(
        item.func,
        kwargs=item.kwargs,
        timeout=item.timeout,
        result_ttl=item.result_ttl,
        failure_ttl=item.failure_ttl,
        description=item.description,
        meta=item.meta,
        retry=item.retry,
        status=JobStatus.SCHEDULED,
    )
    if item.at_front:
        job.enqueue_at_front = True
    return cast(CatalogJob, queue.schedule_job(job, at, pipeline=pipe))


def record_batch(pipe: Any, batch: Batch, job_ids: list[str], split: int = 1, delay_s: int = 0) -> None:
    """The batch's own record, in the jobs' transaction (see `workbench.batches`)."""
    batches.write(
        pipe,
        batch.batch_id,
        task=batch.spec.name,
        queue=batch.queue,
        params=batch.params,
        job_ids=job_ids,
        split=split,
        timeout_s=batch.timeout,
        retries=batch.retries,
        delay_s=delay_s,
    )


def listening_workers(connection: Redis, queue_name: str) -> int:
    """How many registered workers listen on `queue_name`."""
    with broker_errors(connection, "counting workers"):  # a forged registry: none can register there
        return len(worker_keys(connection, queue_name).keys)


@dataclass(frozen=True)
class Snapshot:
    """Where a batch stands: counts by outcome and the progress each running job reports."""

    total: int
    finished: int
    failed: int
    running: tuple[float, ...]
    #: For each running job, its `resumed` record ({"times", "from"}) when it carried on from a checkpoint.
    resumes: tuple[dict | None, ...] = ()
    #: Progress kept by jobs waiting to run again that will resume from a checkpoint (a retry, a recovery).
    kept: float = 0.0

    @property
    def done(self) -> int:
        return self.finished + self.failed

    @property
    def running_progress(self) -> float:
        return sum(self.running) + self.kept


def follow(
    connection: Redis,
    job_ids: list[str],
    queue: str | None = None,
    interval_s: float = defaults.WAIT_POLL_INTERVAL_S,
    unserved_limit_s: float = defaults.WAIT_UNSERVED_LIMIT_S,
) -> Iterator[Snapshot]:
    """Yield a Snapshot every `interval_s` until every job has ended (or can never run).

    Gives up with WorkbenchError when nothing runs and no worker has listened on `queue` for
    `unserved_limit_s`: waiting on would be a hang. The jobs stay queued for a later worker.
    """
    pending = list(job_ids)
    finished = failed = 0
    unserved_since = down_since = None
    seen_running: set[str] = set()  # a job seen running that waits again may resume: its progress is kept
    while True:
        try:
            with broker_errors(connection, "waiting for the jobs"):
                step = _step(connection, pending, queue, seen_running)
        except BrokerUnavailable:
            # A broker restart or a short outage is ridden out, as the workers do; a long one is an error.
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > defaults.WAIT_OUTAGE_LIMIT_S:
                raise
            time.sleep(interval_s)
            continue
        down_since = None
        pending, running, idle = step.pending, step.running, step.idle
        finished, failed = finished + step.finished, failed + step.failed
        yield Snapshot(len(job_ids), finished, failed, running, step.resumes, step.kept)
        if not pending:
            return
        unserved_since = (unserved_since or time.monotonic()) if idle else None
        if unserved_since and time.monotonic() - unserved_since >= unserved_limit_s:
            raise WorkbenchError(
                f"stopped waiting: no worker has listened on {queue} for {unserved_limit_s:g} s and "
                f"{len(pending):,} jobs are still waiting there; start one with "
                f"python consumer_main.py --workers 4 --queue {queue}"
            )
        time.sleep(interval_s)


@dataclass(frozen=True)
class _Step:
    pending: list[str]
    finished: int
    failed: int
    running: tuple[float, ...]
    idle: bool
    resumes: tuple[dict | None, ...] = ()
    kept: float = 0.0


def _step(connection: Redis, pending: list[str], queue: str | None, seen_running: set[str] | None = None) -> _Step:
    """One look at the pending jobs: how many ended since the last look, and what still runs."""
    statuses = _field(connection, pending, "status")
    finished = failed = 0
    still, started, deferred = [], [], []
    for job_id, status in zip(pending, statuses, strict=True):
        if status == JobStatus.FINISHED:
            finished += 1
        elif status in DONE_STATES or status is None:
            failed += 1
        else:
            still.append(job_id)
            started += [job_id] if status == JobStatus.STARTED else []
            deferred += [job_id] if status == JobStatus.DEFERRED else []
    orphans = set(_never_runnable(connection, deferred))
    still = [job_id for job_id in still if job_id not in orphans]
    looks = _progress(connection, started)
    kept = 0.0
    if seen_running is not None:
        seen_running.update(started)
        kept = _kept_progress(connection, [j for j in still if j in seen_running and j not in started])
    idle = bool(still and not started and queue and listening_workers(connection, queue) == 0)
    running = tuple(fraction for fraction, _ in looks)
    resumes = tuple(resumed for _, resumed in looks)
    return _Step(still, finished, failed + len(orphans), running, idle, resumes, kept)


def _field(connection: Redis, job_ids: list[str], name: str) -> list[str | None]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(CatalogJob.key_for(job_id), name)
        return [value.decode() if value else None for value in pipe.execute()]


def _progress(connection: Redis, job_ids: list[str]) -> list[tuple[float, dict | None]]:
    """The fraction each running job last reported (0 when it has not reported yet), and its resume record."""
    looks = []
    for raw in _field(connection, job_ids, "meta"):
        try:
            meta = SERIALIZER.loads(raw.encode()) if raw else None
        except ValueError:  # unreadable meta: no progress to show
            meta = None
        meta = meta if isinstance(meta, dict) else None
        looks.append((read_progress(meta) or 0.0, read_resumed(meta)))
    return looks


def _kept_progress(connection: Redis, job_ids: list[str]) -> float:
    """The progress of jobs waiting to run again that hold a checkpoint: they will carry on from about there."""
    if not job_ids:
        return 0.0
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hexists(CatalogJob.key_for(job_id), CHECKPOINT_FIELD)
        holding = [job_id for job_id, has in zip(job_ids, pipe.execute(), strict=True) if has]
    return sum(fraction for fraction, _ in _progress(connection, holding))


def _never_runnable(connection: Redis, deferred: list[str]) -> Iterator[str]:
    """Deferred jobs RQ will never enqueue (a dependency was stopped or canceled): cancel them."""
    for job_id in deferred:
        key = f"{CatalogJob.redis_job_namespace_prefix}:{job_id}:dependencies"  # as Job.dependencies_key
        dependency_ids = [d.decode() if isinstance(d, bytes) else d for d in connection.smembers(key)]
        statuses = _field(connection, dependency_ids, "status")
        if statuses and all(s in DONE_STATES or s is None for s in statuses):
            if any(s in BLOCKING_STATES or s is None for s in statuses):
                CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER).cancel()
                yield job_id
