"""The rq-dashboard views we replace: JSON-only job reads, honest registries, progress, safe actions.

rq-dashboard 0.9.0 fetches jobs without the serializer (so it unpickles), crashes on jobs with
dependencies, lists registries without RQ's cleanup, and knows nothing of task progress. Each
function here replaces the blueprint view of the same name (see `REPLACED` and app.py); the
other views, the templates' layout and the static files stay rq-dashboard's own.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from flask import abort, current_app, jsonify, make_response, render_template, url_for
from redis import Redis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from rq.registry import clean_registries
from rq.worker import Worker
from rq_dashboard import web as upstream

from .. import checkpoint, progress
from ..control import host_address
from ..jobs import SERIALIZER, CatalogJob, fetch_job, make_queue
from ..workers_view import worker_rows

#: Registry names the dashboard's URLs use, and how to get each from a queue.
REGISTRIES = {
    "failed": lambda q: q.failed_job_registry,
    "deferred": lambda q: q.deferred_job_registry,
    "started": lambda q: q.started_job_registry,
    "finished": lambda q: q.finished_job_registry,
    "scheduled": lambda q: q.scheduled_job_registry,
    "canceled": lambda q: q.canceled_job_registry,
}
#: Shown instead of stored data that is not JSON (pickled by some other producer): never unpickled.
UNREADABLE = "(stored data is not JSON; not shown)"


def _conn() -> Redis:
    return current_app.redis_conn


def _json(payload: dict, status: int = 200):
    return jsonify(payload), status, {"Cache-Control": "no-store"}


def _queues(connection: Redis) -> list[Queue]:
    return sorted(Queue.all(connection=connection, serializer=SERIALIZER), key=lambda q: q.name)


def tidy_registries(queue: Queue) -> None:
    """Run RQ's own registry maintenance, under RQ's lock so a worker doing the same is not doubled.

    This is what turns a job whose worker died (its started-registry entry expired) into a failed
    or retried one; rq-dashboard skips it, so such jobs showed as "started" forever.
    """
    if queue.acquire_maintenance_lock():
        try:
            clean_registries(queue)
        finally:
            queue.release_maintenance_lock()


def abandoned_reason(connection: Redis, job: CatalogJob) -> str | None:
    """Why a "started" job is running nowhere (its worker is gone), or None if it may be running."""
    if job.get_status(refresh=False) != JobStatus.STARTED:
        return None
    if not job.worker_name:
        return "no worker took it"
    if not connection.exists(Worker.redis_worker_namespace_prefix + job.worker_name):
        return f"its worker {job.worker_name} is gone"
    return None


def _abandoned_count(queue: Queue) -> int:
    count = 0
    for job_id in queue.started_job_registry.get_job_ids(cleanup=False):
        try:
            job = fetch_job(job_id, queue.connection)
        except NoSuchJobError:
            continue
        count += abandoned_reason(queue.connection, job) is not None
    return count


def status_text(job: CatalogJob) -> str:
    """'started', not 'JobStatus.STARTED' (str() of a str-mixin Enum names the class)."""
    status = job.get_status(refresh=False)
    return getattr(status, "value", str(status))


def _progress(job: CatalogJob) -> dict | None:
    value = (job.meta or {}).get(progress.META_KEY)
    if progress.read(job.meta) is None:
        return None
    # issue 19: a job that carried on from a checkpoint says so wherever its progress shows
    return {**value, "resumed": progress.resume_words(job.meta) or None}


def _meta_text(job: CatalogJob) -> str:
    if job._unreadable_meta is not None:  # RQ keeps undecodable meta aside instead of unpickling it
        return UNREADABLE
    return json.dumps(job.meta, default=str, sort_keys=True)


def _exc_info(job: CatalogJob) -> str | None:
    try:
        latest = job.latest_result()
    except Exception:  # noqa: BLE001 - a result stored by another serializer must not break the page
        return UNREADABLE
    return latest.exc_string if latest else None


def _result(job: CatalogJob) -> Any:
    try:
        return job.return_value()
    except Exception:  # noqa: BLE001 - a result stored by another serializer must not break the page
        return UNREADABLE


# -- replaced JSON endpoints -----------------------------------------------------------


def list_queues(instance_number: int):
    queues = _queues(_conn())
    for queue in queues:
        tidy_registries(make_queue(queue.name, queue.connection))
    rows = upstream.serialize_queues(instance_number, queues)
    for row, queue in zip(rows, queues, strict=True):
        row["abandoned_job_count"] = _abandoned_count(make_queue(queue.name, queue.connection))
    return _json({"queues": rows})


def list_jobs(instance_number: int, queue_name: str, registry_name: str, per_page: str, order: str, page: str):
    if registry_name != "queued" and registry_name not in REGISTRIES:
        abort(404)
    connection = _conn()
    tidy_registries(make_queue(queue_name, connection))
    # rq-dashboard's own listing (it reads with config.serializer, which app.py sets to JSON),
    # paginated its way; we add what a person needs to judge each job.
    data = upstream.list_jobs.__wrapped__(instance_number, queue_name, registry_name, per_page, order, page)
    for row in data["jobs"]:
        try:
            job = fetch_job(row["id"], connection)
        except NoSuchJobError:
            continue
        row["status"] = status_text(job)
        row["progress"] = _progress(job)
        row["abandoned"] = abandoned_reason(connection, job)
    return _json(data)


def job_info(instance_number: int, job_id: str):
    connection = _conn()
    try:
        job = fetch_job(job_id, connection)
    except NoSuchJobError:
        return _json({"error": f"no job {job_id}"}, 404)
    dependencies = [str(dep) for dep in job._dependency_ids]  # str in RQ 3: upstream #522 decoded them
    return _json(
        {
            "id": job.id,
            "created_at": upstream.serialize_date(job.created_at),
            "enqueued_at": upstream.serialize_date(job.enqueued_at),
            "started_at": upstream.serialize_date(job.started_at),
            "ended_at": upstream.serialize_date(job.ended_at),
            "origin": job.origin,
            "status": status_text(job),
            "worker_name": job.worker_name,
            "result": _result(job),
            "exc_info": _exc_info(job),
            "description": job.description,
            "metadata": _meta_text(job),
            "progress": _progress(job),
            "resumed": progress.resumed(job.meta),  # issue 19: resumes, and the checkpoint a requeue resumes from
            "checkpoint": checkpoint.summary(job.stored_checkpoint),
            "abandoned": abandoned_reason(connection, job),
            "depends_on": dependencies,
            "depends_on_status": [
                "active" if connection.exists(CatalogJob.key_for(dep)) else "expired" for dep in dependencies
            ],
        }
    )


def list_workers(instance_number: int):
    connection = _conn()
    workers = {w.name: w for w in Worker.all(connection=connection, serializer=SERIALIZER)}
    # The consumer's live view draws these rows for its pool slots; every registered worker is one here.
    slots = [SimpleNamespace(name=name, state="running") for name in sorted(workers)]
    rows = []
    for name, state, job_id, done_progress, done, failed in worker_rows(connection, slots):
        job_id = None if job_id == "-" else job_id
        description = connection.hget(CatalogJob.key_for(job_id), "description") if job_id else None
        rows.append(
            {
                "name": name,
                "hostname": workers[name].hostname,
                "address": host_address(workers[name].ip_address),
                "state": state,
                "queues": workers[name].queue_names(),
                "current_job": job_id,
                "description": description.decode(errors="replace") if description else None,
                "progress": done_progress,
                "successful_job_count": done,
                "failed_job_count": failed,
            }
        )
    return _json({"workers": rows})


# -- replaced pages --------------------------------------------------------------------


def job_view(instance_number: int, job_id: str):
    # Only existence is checked here; the page's script reads the job as JSON (job_info).
    if not _conn().exists(CatalogJob.key_for(job_id)):
        abort(404)
    response = make_response(
        render_template(
            "rq_dashboard/job.html",
            current_instance=instance_number,
            instance_list=upstream.escape_format_instance_list(current_app.config.get("RQ_DASHBOARD_REDIS_URL")),
            id=job_id,
            rq_url_prefix=url_for(".queues_overview"),
            rq_dashboard_version=upstream.rq_dashboard_version,
            rq_version=upstream.rq_version,
            deprecation_options_usage=current_app.config.get("DEPRECATED_OPTIONS", False),
            enable_delete=not current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"),
        )
    )
    response.headers.set("Cache-Control", "no-store")
    return response


# -- replaced actions (POST only, same origin: see security.py) ------------------------


def _delete(connection: Redis, job_id: str, registry=None) -> bool:
    try:
        fetch_job(job_id, connection).delete()
    except NoSuchJobError:
        if registry is not None:
            registry.remove(job_id)
        return False
    return True


def delete_job_view(job_id: str):
    if current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"):
        return _json({"status": "DISABLED"})
    found = _delete(_conn(), job_id)
    return _json({"status": "OK" if found else "ERROR"}, 200 if found else 404)


def requeue_job_view(job_id: str):
    try:
        fetch_job(job_id, _conn()).requeue()
    except NoSuchJobError:
        return _json({"status": "ERROR", "error": f"no job {job_id}"}, 404)
    except InvalidJobOperation as exc:
        return _json({"status": "ERROR", "error": str(exc)}, 409)
    return _json({"status": "OK"})


def requeue_all(queue_name: str):
    registry = make_queue(queue_name, _conn()).failed_job_registry
    count = 0
    for job_id in registry.get_job_ids(cleanup=False):
        try:
            registry.requeue(job_id)
            count += 1
        except (NoSuchJobError, InvalidJobOperation):
            continue
    return _json({"status": "OK", "count": count})


def empty_queue(queue_name: str, registry_name: str):
    if current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"):
        return _json({"status": "DISABLED"})
    queue = make_queue(queue_name, _conn())
    if registry_name == "queued":
        queue.empty()
    elif registry_name in REGISTRIES:
        registry = REGISTRIES[registry_name](queue)
        for job_id in registry.get_job_ids(cleanup=False):
            _delete(queue.connection, job_id, registry)
    else:
        abort(404)
    return _json({"status": "OK"})


#: Blueprint endpoint name -> our replacement.
REPLACED = {
    f"rq_dashboard.{view.__name__}": view
    for view in (
        list_queues,
        list_jobs,
        job_info,
        list_workers,
        job_view,
        delete_job_view,
        requeue_job_view,
        requeue_all,
        empty_queue,
    )
}
