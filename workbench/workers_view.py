"""What the consumer's live view and the dashboard show for each worker."""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from rq.worker import Worker

from .jobs import SERIALIZER, fetch_job
from .progress import read as read_progress


def worker_rows(connection: Redis, slots: Iterable) -> list[tuple[str, str, str, str, str, str]]:
    """One row per pool slot: name, state, current job, progress, jobs done, jobs failed."""
    rows = []
    for slot in slots:
        worker = Worker.find_by_key(
            Worker.redis_worker_namespace_prefix + slot.name, connection=connection, serializer=SERIALIZER
        )
        if worker is None or slot.state != "running":
            rows.append((slot.name, slot.state, "-", "-", "-", "-"))
            continue
        job_id = worker.get_current_job_id()
        progress = "-"
        if job_id:
            try:
                fraction = read_progress(fetch_job(job_id, connection).get_meta(refresh=False))
                progress = f"{fraction:.0%}" if fraction is not None else "-"
            except Exception:  # noqa: BLE001 - the job may end between the two reads
                pass
        rows.append(
            (
                slot.name,
                str(worker.get_state()),
                job_id or "-",
                progress,
                str(worker.successful_job_count),
                str(worker.failed_job_count),
            )
        )
    return rows
