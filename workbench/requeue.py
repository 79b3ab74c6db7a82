"""Requeueing failed and stopped jobs: they resume from their checkpoint, or restart from zero when asked.

A requeue keeps the job's checkpoint (`workbench.checkpoint`), so its next run carries on from it;
`restart=True` discards the checkpoint, and with it the job's progress and resume record, first.
The dashboard's job page and `producer_main.py --batch ID --requeue-failed [--restart]` use these.
Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus

from . import checkpoint
from .jobs import CatalogJob, fetch_job

#: The states a requeue takes a job out of (RQ keeps both in the failed registry).
REQUEUABLE = (JobStatus.FAILED.value, JobStatus.STOPPED.value)


def requeue(connection: Redis, job_id: str, *, restart: bool = False) -> bool:
    """Put a failed or stopped job back on its queue; returns whether it will resume from a checkpoint.

    Raises NoSuchJobError for a job that does not exist, InvalidJobOperation for one that is not
    failed or stopped (a running job is never restarted under its worker).
    """
    job = fetch_job(job_id, connection)
    if job.get_status(refresh=False) not in REQUEUABLE:
        raise InvalidJobOperation(f"job {job_id} is {job.get_status(refresh=False)}, not failed or stopped")
    if restart:
        checkpoint.discard(connection, job)
        job.stored_checkpoint = None
    job.requeue()
    return job.stored_checkpoint is not None


@dataclass
class Requeued:
    """What `requeue_failed` did: the jobs put back, and how many of them resume from a checkpoint."""

    job_ids: list[str] = field(default_factory=list)
    resuming: int = 0


def requeue_failed(connection: Redis, job_ids: list[str], *, restart: bool = False) -> Requeued:
    """Requeue every failed or stopped job among `job_ids` (a batch's), in order."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(CatalogJob.key_for(job_id), "status")
        statuses = pipe.execute()
    done = Requeued()
    for job_id, raw in zip(job_ids, statuses, strict=True):
        if raw is None or raw.decode(errors="replace") not in REQUEUABLE:
            continue
        try:
            resumes = requeue(connection, job_id, restart=restart)
        except (NoSuchJobError, InvalidJobOperation):
            continue  # it ended or moved on between the two reads
        done.job_ids.append(job_id)
        done.resuming += resumes
    return done
