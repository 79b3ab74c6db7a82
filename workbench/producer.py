"""Enqueueing catalog tasks in pipelined batches, and following them until they finish."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Retry
from rq.job import JobStatus
from rq.worker import Worker

from . import defaults
from .catalog import TaskSpec
from .jobs import SERIALIZER, CatalogJob, make_queue
from .progress import read as read_progress

DONE_STATES = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


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


def enqueue(connection: Redis, batch: Batch) -> list[CatalogJob]:
    """Enqueue the batch with RQ's enqueue_many, one pipeline per ENQUEUE_BATCH_SIZE jobs."""
    queue = make_queue(batch.queue, connection)
    timeout = batch.timeout_s or batch.spec.timeout_s
    retry = Retry(max=batch.retries) if batch.retries else None
    description = f"{batch.spec.name}({', '.join(f'{k}={v!r}' for k, v in batch.params.items())})"
    jobs: list[CatalogJob] = []
    for first in range(0, batch.count, defaults.ENQUEUE_BATCH_SIZE):
        size = min(defaults.ENQUEUE_BATCH_SIZE, batch.count - first)
        data = [
            queue.prepare_data(
                batch.spec.func_path,
                kwargs=dict(batch.params),
                timeout=timeout,
                result_ttl=defaults.RESULT_TTL_S,
                failure_ttl=defaults.FAILURE_TTL_S,
                description=description,
                retry=retry,
                at_front=batch.at_front,
                meta={"task": batch.spec.name},
            )
            for _ in range(size)
        ]
        with connection.pipeline() as pipe:
            jobs.extend(queue.enqueue_many(data, pipeline=pipe))
            pipe.execute()
    return jobs


def listening_workers(connection: Redis, queue_name: str) -> int:
    """How many registered workers listen on `queue_name`."""
    return Worker.count(connection=connection, queue=make_queue(queue_name, connection))


@dataclass(frozen=True)
class Snapshot:
    """Where a batch stands: counts by outcome and the progress reported by running jobs."""

    total: int
    finished: int
    failed: int
    running_progress: float

    @property
    def done(self) -> int:
        return self.finished + self.failed


def follow(connection: Redis, job_ids: list[str], interval_s: float = 0.2) -> Iterator[Snapshot]:
    """Yield a Snapshot every `interval_s` until every job has ended."""
    pending = list(job_ids)
    finished = failed = 0
    while True:
        statuses = _statuses(connection, pending)
        still, progress = [], 0.0
        for job_id, status in zip(pending, statuses, strict=True):
            if status == JobStatus.FINISHED:
                finished += 1
            elif status in DONE_STATES or status is None:
                failed += 1
            else:
                still.append(job_id)
                if status == JobStatus.STARTED:
                    progress += _progress(connection, job_id)
        pending = still
        yield Snapshot(len(job_ids), finished, failed, progress)
        if not pending:
            return
        time.sleep(interval_s)


def _statuses(connection: Redis, job_ids: list[str]) -> list[str | None]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(CatalogJob.key_for(job_id), "status")
        return [s.decode() if s else None for s in pipe.execute()]


def _progress(connection: Redis, job_id: str) -> float:
    try:
        job = CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except Exception:  # noqa: BLE001 - a job that vanished mid-poll simply has no progress
        return 0.0
    return read_progress(job.get_meta(refresh=False)) or 0.0


@dataclass(frozen=True)
class Outcome:
    """One ended job, as the results table and --json show it."""

    id: str
    queue: str
    task: str
    params: dict
    status: str
    result: Any
    error: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None


def outcomes(connection: Redis, job_ids: list[str]) -> list[Outcome]:
    """Fetch every job once, in pipelined batches."""
    rows = []
    for job in CatalogJob.fetch_many(job_ids, connection=connection, serializer=SERIALIZER):
        if job is None:
            continue
        status = job.get_status(refresh=False)
        duration = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else None
        error = None
        if status != JobStatus.FINISHED:
            error = _last_line(job.exc_info) or str(status)
        rows.append(
            Outcome(
                id=job.id,
                queue=job.origin,
                task=(job.meta or {}).get("task", job.func_name or "?"),
                params=dict(job.kwargs or {}),
                status=str(status.value if hasattr(status, "value") else status),
                result=job.return_value(refresh=False) if status == JobStatus.FINISHED else None,
                error=error,
                started_at=job.started_at.isoformat() if job.started_at else None,
                ended_at=job.ended_at.isoformat() if job.ended_at else None,
                duration_s=round(duration, 3) if duration is not None else None,
            )
        )
    return rows


def _last_line(text: str | None) -> str | None:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None
