"""What the consumer's live view shows for each worker: one row per pool slot."""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from rq.worker import Worker

from .control import UNREADABLE_WORKER
from .jobs import SERIALIZER, fetch_job
from .progress import read as read_progress
from .progress import resume_words

Row = tuple[str, str, str, str, str, str]
#: RQ's states as a person reads them ("started" is a worker that has not taken a job yet).
_STATE_WORDS = {"started": "idle", "idle": "idle", "busy": "busy", "suspended": "suspended"}


def worker_rows(connection: Redis, slots: Iterable) -> list[Row]:
    """Name, state (idle/busy/stopped/...), current job, its progress, jobs done, jobs failed."""
    rows: list[Row] = []
    for slot in slots:
        try:
            worker = Worker.find_by_key(
                Worker.redis_worker_namespace_prefix + slot.name, connection=connection, serializer=SERIALIZER
            )
        except UNREADABLE_WORKER:  # its record was garbled in the broker: the view goes on, the worker too
            rows.append((slot.name, "unreadable", "-", "-", "-", "-"))
            continue
        if worker is None or slot.state != "running":
            done = str(worker.successful_job_count) if worker else "-"
            failed = str(worker.failed_job_count) if worker else "-"
            rows.append((slot.name, slot.state if slot.state != "running" else "starting", "-", "-", done, failed))
            continue
        job_id = worker.get_current_job_id()
        running = len(worker.get_current_executions())  # several on a worker with --threads
        rows.append(
            (
                slot.name,
                _STATE_WORDS.get(str(worker.get_state()), str(worker.get_state())),
                f"{job_id} +{running - 1}" if job_id and running > 1 else job_id or "-",
                _progress(connection, job_id),
                str(worker.successful_job_count),
                str(worker.failed_job_count),
            )
        )
    return rows


def _progress(connection: Redis, job_id: str | None) -> str:
    if not job_id:
        return "-"
    try:
        meta = fetch_job(job_id, connection).get_meta(refresh=False)
    except Exception:  # noqa: BLE001 - the job may end or vanish between the two reads
        return "-"
    fraction, resumed = read_progress(meta), resume_words(meta)
    shown = f"{fraction:.0%}" if fraction is not None else "-"
    return f"{shown} ({resumed})" if resumed else shown
