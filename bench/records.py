"""What RQ recorded about the jobs a measurement ran: timestamps and outcomes, read in one pipeline.

Timings come from the timestamps RQ itself writes on both sides (`enqueued_at` by the producer,
`started_at` and `ended_at` by the worker, microsecond UTC), so polling intervals never leak
into a figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcparse

from .sides import BenchError


@dataclass(frozen=True)
class JobRecord:
    id: str
    status: str
    enqueued: datetime | None
    started: datetime | None
    ended: datetime | None


@dataclass(frozen=True)
class Finished:
    """A job that finished, with all three of RQ's timestamps."""

    id: str
    enqueued: datetime
    started: datetime
    ended: datetime


def records(conn: Redis, ids: list[str]) -> list[JobRecord]:
    with conn.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id), "status", "enqueued_at", "started_at", "ended_at")
        rows = pipe.execute()
    return [
        JobRecord(job_id, (status or b"missing").decode(), _when(enq), _when(start), _when(end))
        for job_id, (status, enq, start, end) in zip(ids, rows, strict=True)
    ]


def finished(conn: Redis, ids: list[str], side: str) -> list[Finished]:
    """The records of `ids`, or BenchError when any did not finish (a failed job voids the figure)."""
    found, bad = [], []
    for r in records(conn, ids):
        if r.status == "finished" and r.enqueued and r.started and r.ended:
            found.append(Finished(r.id, r.enqueued, r.started, r.ended))
        else:
            bad.append(r)
    if bad:
        raise BenchError(f"{len(bad)} of {len(ids)} {side} jobs did not finish (first: {bad[0].id} {bad[0].status}).")
    return found


def makespan_s(found: list[Finished]) -> float:
    """From the first job enqueued to the last one ended."""
    return (max(r.ended for r in found) - min(r.enqueued for r in found)).total_seconds()


def busy_span_s(found: list[Finished]) -> float:
    """From the first job started to the last one ended: the workers' working time, start-up excluded."""
    return (max(r.ended for r in found) - min(r.started for r in found)).total_seconds()


def wait_ended(conn: Redis, queue: str, count: int, timeout_s: float, interval_s: float = 0.01) -> None:
    """Wait until `count` jobs of `queue` are finished or failed (two ZCARDs per poll, cheap on both sides)."""
    keys = (FinishedJobRegistry(queue, connection=conn).key, FailedJobRegistry(queue, connection=conn).key)
    deadline = time.monotonic() + timeout_s
    while sum(int(conn.zcard(key)) for key in keys) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"jobs on {queue} did not end within {timeout_s:.0f} s.")
        time.sleep(interval_s)


def results(conn: Redis, ids: list[str]) -> list[Any]:
    """Return values of finished jobs (JSON, so the default Job class reads both sides; what a task returned)."""
    return [Job.fetch(job_id, connection=conn, serializer=JSONSerializer).return_value() for job_id in ids]


def _when(raw: bytes | None) -> datetime | None:
    return utcparse(raw.decode()) if raw else None
