"""The Workers page's rows: rq-dashboard's workers.json fields, plus what an operator asks for.

Upstream's fields stay as they were (name, pid, queues, state, current_job, last_heartbeat,
birth_date, successful_job_count, failed_job_count, total_working_time, version,
python_version: clients and rq-dashboard's own tests read them). Added: host, uptime, the job's
id, description, progress and how long it has run, and the CPU and memory each workbench worker
measures of itself in its liveness beat (`workbench.heartbeat`), so workers on other hosts show
theirs. One worker whose record cannot be read is one "unreadable" row, not a failed page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from rq.utils import now
from rq.worker import Worker

from ..control import host_address
from ..heartbeat import alive_key, parse_alive
from ..jobs import SERIALIZER
from ..known_workers import registry_key, worker_keys
from .records import read_rows

#: RQ's states as a person reads them ("started" is a worker that has not taken a job yet).
STATE_WORDS = {"started": "idle", "idle": "idle", "busy": "busy", "suspended": "suspended"}


def _seconds_since(moment: datetime | None) -> float | None:
    return round((now() - moment).total_seconds(), 1) if moment else None


def worker_rows(connection: Redis) -> list[dict[str, Any]]:
    """One row per registered worker, sorted by host then name."""
    rows = []
    keys, problem = worker_keys(connection)
    if problem:  # the registry itself is forged: one unreadable row says so
        rows.append(_unreadable(registry_key(), problem))
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        present = pipe.execute()
    # Only workers whose record exists: RQ's lookup would also unregister the others, and a page
    # view changes nothing (the consumers' janitor unregisters dead workers).
    for key in (key for key, here in zip(keys, present, strict=True) if here):
        name = key[len(Worker.redis_worker_namespace_prefix) :]
        try:
            row = _row(connection, key)
        except Exception as exc:  # noqa: BLE001 - a malformed worker record must not take the page down
            rows.append(_unreadable(name, f"its record cannot be read ({type(exc).__name__})"))
            continue
        if row is not None:
            rows.append(row)
    _add_jobs(connection, rows)
    return sorted(rows, key=lambda r: (r["hostname"] or "", r["name"]))


def _row(connection: Redis, key: str) -> dict[str, Any] | None:
    worker = Worker.find_by_key(key, connection=connection, serializer=SERIALIZER)
    if worker is None:
        return None
    job_id = worker.get_current_job_id()
    beat = parse_alive(connection.get(alive_key(worker.name)))
    state = str(worker.get_state())
    return {
        "name": worker.name,
        "unreadable": None,
        "hostname": worker.hostname,
        "address": host_address(worker.ip_address),  # as the broker sees it: hosts may share a name
        "pid": worker.pid,
        "queues": worker.queue_names(),
        "state": STATE_WORDS.get(state, state),
        "current_job": "idle",  # upstream's shape: a dict for a busy worker (filled in by _add_jobs)
        "current_job_id": job_id,
        # every job it runs now (several on a worker with --threads), one RQ execution each
        "current_job_ids": sorted({execution.job_id for execution in worker.get_current_executions()}),
        "last_heartbeat": worker.last_heartbeat,
        "birth_date": worker.birth_date,
        "successful_job_count": worker.successful_job_count,
        "failed_job_count": worker.failed_job_count,
        "total_working_time": worker.total_working_time,
        "version": getattr(worker, "version", ""),
        "python_version": getattr(worker, "python_version", ""),
        "uptime_s": _seconds_since(worker.birth_date),
        "heartbeat_age_s": _seconds_since(worker.last_heartbeat),
        "stopping": worker.shutdown_requested_date is not None,
        "workbench": beat is not None,  # a workbench worker with a fresh liveness beat
        "cpu_percent": _number(beat, "cpu"),
        "rss_bytes": _number(beat, "rss"),
    }


def _number(beat: dict | None, name: str) -> float | None:
    value = (beat or {}).get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _add_jobs(connection: Redis, rows: list[dict[str, Any]]) -> None:
    """The current job of each busy worker, read in one round trip (an unreadable one says so)."""
    busy = [row for row in rows if row.get("current_job_id")]
    for row, job in zip(busy, read_rows(connection, [r["current_job_id"] for r in busy], False), strict=True):
        row["description"] = job["description"]
        row["job_running_s"] = job["duration_s"] if job["status"] == "started" else None
        fraction, resumed = (job["progress"] or {}).get("fraction"), (job["progress"] or {}).get("resumed")
        row["progress"] = f"{fraction:.0%}" if isinstance(fraction, int | float) else "-"
        if resumed:  # issue 19: it carried on from a checkpoint
            row["progress"] += f" ({resumed})"
        row["job_unreadable"] = job["unreadable"]
        row["current_job"] = {
            "job_id": job["id"],
            "description": job["description"],
            "created_at": job["created_at"],
            "call_string": job["description"],
        }
    for row in rows:
        if not row.get("current_job_id"):
            row.update(description=None, job_running_s=None, progress="-", job_unreadable=None)


def _unreadable(name: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "unreadable": reason,
        "hostname": None,
        "address": None,
        "pid": None,
        "queues": [],
        "state": "unreadable",
        "current_job": "idle",
        "current_job_id": None,
        "current_job_ids": [],
        "last_heartbeat": None,
        "birth_date": None,
        "successful_job_count": None,
        "failed_job_count": None,
        "total_working_time": None,
        "version": "",
        "python_version": "",
        "uptime_s": None,
        "heartbeat_age_s": None,
        "stopping": False,
        "workbench": False,
        "cpu_percent": None,
        "rss_bytes": None,
    }
