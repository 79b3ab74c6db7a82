"""The rq-dashboard views we replace: JSON-only reads, one bad record never fails a page, honest actions.

rq-dashboard 0.9.0 fetches jobs without the serializer (so it unpickles), crashes on jobs with
dependencies and on any unreadable record, answers 500 to a zero page size, deletes running
jobs behind their workers' backs, and knows nothing of task progress. Each function here
replaces the blueprint view of the same name (see `REPLACED` and app.py); the URLs and JSON
keys stay rq-dashboard's, with fields added. No view runs a registry cleanup: a read shows the
broker as it is (jobs of dead workers are marked "abandoned"), and the consumers' janitor
recovers them.
"""

from __future__ import annotations

import json
from typing import Any, cast

from flask import Flask, Response, abort, current_app, jsonify, make_response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.worker import Worker
from rq_dashboard import web as upstream

from .. import checkpoint, progress, stats
from ..jobs import SERIALIZER, CatalogJob, RecordTooLarge, make_queue
from ..known_queues import all_queues
from . import actions, listing, records
from .listing import LIST_NAMES, UNREADABLE_COUNT, list_sizes
from .workers import worker_rows

#: Shown instead of stored data that is not JSON (pickled by some other producer): never unpickled.
UNREADABLE = "(stored data is not JSON; not shown)"


class DashboardApp(Flask):
    """The dashboard's Flask app: `redis_conn` is the attribute rq-dashboard's own views read."""

    redis_conn: Redis


def conn() -> Redis:
    return cast(DashboardApp, current_app).redis_conn


def as_json(payload: dict, status: int = 200) -> ResponseReturnValue:
    return jsonify(payload), status, {"Cache-Control": "no-store"}


def render_page(template: str, active_tab: str = "", status: int = 200, **context: Any) -> Response:
    """A page with the navigation bar, the broker selector (masked URLs) and the page's data attributes."""
    instance = (request.view_args or {}).get("instance_number", 0)
    response = make_response(
        render_template(
            template,
            current_instance=instance,
            instance_list=current_app.config.get("RQ_DASHBOARD_REDIS_URL"),
            rq_url_prefix=url_for("rq_dashboard.queues_overview"),
            rq_dashboard_version=upstream.rq_dashboard_version,
            rq_version=upstream.rq_version,
            active_tab=active_tab,
            deprecation_options_usage=False,
            enable_delete=not current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"),
            **context,
        ),
        status,
    )
    response.headers.set("Cache-Control", "no-store")
    return response


def _queues(connection: Redis) -> list[Queue]:
    return all_queues(connection, serializer=SERIALIZER)


def abandoned_rows(connection: Redis, rows: list[dict]) -> None:
    """Mark started rows whose worker is gone (one round trip for the page)."""
    started = [row for row in rows if row["status"] == "started"]
    with connection.pipeline(transaction=False) as pipe:
        for row in started:
            pipe.exists(Worker.redis_worker_namespace_prefix + (row["worker_name"] or ""))
        present = pipe.execute() if started else []
    for row in rows:
        row["abandoned"] = None
    for row, alive in zip(started, present, strict=True):
        if not alive:
            row["abandoned"] = f"its worker {row['worker_name']} is gone" if row["worker_name"] else "no worker took it"


# -- replaced JSON endpoints -----------------------------------------------------------


def list_queues(instance_number: int) -> ResponseReturnValue:
    connection = conn()
    queues = _queues(connection)
    sizes = list_sizes(connection, queues)
    rows = [_queue_row(instance_number, queue, counts) for queue, counts in zip(queues, sizes, strict=True)]
    recent = stats.queue_minutes(connection, [q.name for q in queues])
    for row, queue in zip(rows, queues, strict=True):
        started_ids = [] if row["started_job_registry_count"] == UNREADABLE_COUNT else _started_ids(queue)
        started = records.read_rows(connection, started_ids, with_errors=False)
        abandoned_rows(connection, started)
        row["abandoned_job_count"] = sum(1 for r in started if r["abandoned"])
        minutes = recent[queue.name]
        row["finished_last_hour"] = sum(m.counts[stats.FINISHED] for m in minutes)
        row["failed_last_hour"] = sum(m.counts[stats.FAILED] + m.counts[stats.STOPPED] for m in minutes)
        row["trends_url"] = url_for("workbench.trends_view", instance_number=instance_number)
    return as_json({"queues": rows})


def _queue_row(instance_number: int, queue: Queue, sizes: dict[str, int | str]) -> dict[str, Any]:
    """rq-dashboard's queue row (counts without cleanup, as upstream); a forged list's count reads 'unreadable'."""
    row: dict[str, Any] = {"name": queue.name, "count": sizes["queued"]}
    for name in LIST_NAMES:
        row[f"{name}_url"] = url_for(
            ".jobs_overview",
            instance_number=instance_number,
            queue_name=queue.name,
            registry_name=name,
            per_page="8",
            order="asc",
            page="1",
        )
        if name != "queued":
            row[f"{name}_job_registry_count"] = sizes[name]
    return row


def _started_ids(queue: Queue) -> list[str]:
    return queue.started_job_registry.get_job_ids(cleanup=False)


def list_jobs(
    instance_number: int, queue_name: str, registry_name: str, per_page: str, order: str, page: str
) -> ResponseReturnValue:
    try:
        name = listing.registry_name(registry_name)
        size, number, order = listing.page_request(per_page, page, order)
    except listing.BadInput as exc:
        return as_json({"error": str(exc)}, 400)
    connection = conn()
    total, ids = listing.page_of_ids(connection, queue_name, name, size, number, order)
    rows = records.read_rows(connection, ids)
    abandoned_rows(connection, rows)
    readable = total if isinstance(total, int) else 0
    return as_json(
        {
            "name": queue_name,
            "registry_name": name,
            "total": total,
            "jobs": rows,
            "pagination": listing.pagination(instance_number, queue_name, name, size, number, order, readable),
            **({} if isinstance(total, int) else {"unreadable": "its key holds another type than RQ writes"}),
        }
    )


def job_info(instance_number: int, job_id: str) -> ResponseReturnValue:
    connection = conn()
    missing = {"error": f"no job {job_id} exists in the broker (it may have expired or been deleted)."}
    if not connection.exists(CatalogJob.key_for(job_id)):
        return as_json(missing, 404)
    [row] = records.read_rows(connection, [job_id])
    abandoned_rows(connection, [row])
    job, reason = None, row["unreadable"]
    try:
        job = records.load_job(connection, job_id)
    except RecordTooLarge as exc:
        return as_json({**row, "status": records.TOO_LARGE, "unreadable": f"its record is too large to show: {exc}"})
    except NoSuchJobError:
        return as_json(missing, 404)
    except Exception as exc:  # noqa: BLE001 - any malformed record is one unreadable job, not a 500
        reason = reason or f"its record cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
    if job is None or reason:
        status = row["status"] if row["unreadable"] else records.UNREADABLE
        return as_json({**row, "status": status, "unreadable": reason, "metadata": _meta_text(job) if job else None})
    dependencies = [str(dep) for dep in job._dependency_ids]  # str in RQ 3: upstream #522 decoded them
    return as_json(
        {
            **row,
            "status": _status_text(job),
            "result": _result(job),
            "exc_info": _exc_info(job),
            "metadata": _meta_text(job),
            "params_json": json.dumps(job.kwargs or {}, sort_keys=True, default=str),
            "resumed": progress.resumed(job.meta),  # issue 19: resumes, and the checkpoint a requeue resumes from
            "checkpoint": checkpoint.summary(job.stored_checkpoint),
            "depends_on": dependencies,
            "depends_on_status": [
                "active" if connection.exists(CatalogJob.key_for(dep)) else "expired" for dep in dependencies
            ],
        }
    )


def _status_text(job: CatalogJob) -> str:
    status = job.get_status(refresh=False)
    return getattr(status, "value", str(status))


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


def list_workers(instance_number: int) -> ResponseReturnValue:
    return as_json({"workers": worker_rows(conn())})


# -- replaced pages --------------------------------------------------------------------


def queues_overview(instance_number: int) -> ResponseReturnValue:
    return render_page("rq_dashboard/queues.html", "queues")


def workers_overview(instance_number: int) -> ResponseReturnValue:
    # rq-dashboard loaded every worker here (and failed on one malformed record); the rows come as JSON.
    return render_page("rq_dashboard/workers.html", "workers")


def job_view(instance_number: int, job_id: str) -> ResponseReturnValue:
    # Only existence is checked here; the page's script reads the job as JSON (job_info).
    found = bool(conn().exists(CatalogJob.key_for(job_id)))
    return render_page("rq_dashboard/job.html", "jobs", 200 if found else 404, id=job_id, found=found)


def jobs_overview(
    instance_number: int, queue_name: str | None, registry_name: str, per_page: object, order: str, page: object
) -> ResponseReturnValue:
    connection = conn()
    try:
        name = listing.registry_name(registry_name)
        size, number, order = listing.page_request(per_page, page, order)
    except listing.BadInput as exc:
        return render_page("rq_dashboard/error.html", "jobs", 400, sentence=str(exc))
    queue = make_queue(queue_name or "default", connection)
    return render_page(
        "rq_dashboard/jobs.html",
        "jobs",
        queues=_queues(connection),
        queue=queue,
        per_page=size,
        order=order,
        page=number,
        registry_name=name,
    )


# -- replaced actions (POST only, same origin: see security.py) ------------------------


def _disabled() -> bool:
    return bool(current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"))


def delete_job_view(job_id: str) -> ResponseReturnValue:
    if _disabled():
        return as_json({"status": "DISABLED"})
    outcome = actions.delete_job(conn(), job_id)
    return as_json(outcome.as_json(), outcome.code)


def requeue_job_view(job_id: str) -> ResponseReturnValue:
    outcome = actions.requeue_job(conn(), job_id)
    return as_json(outcome.as_json(), outcome.code)


def requeue_all(queue_name: str) -> ResponseReturnValue:
    registry = make_queue(queue_name, conn()).failed_job_registry
    outcome = actions.bulk(conn(), "requeue", registry.get_job_ids(cleanup=False))
    body: dict[str, Any] = {"status": "OK", "count": len(outcome.detail["done"])}
    if outcome.detail["refused"]:
        body["refused"] = outcome.detail["refused"]
    return as_json(body)


def empty_queue(queue_name: str, registry_name: str) -> ResponseReturnValue:
    if _disabled():
        return as_json({"status": "DISABLED"})
    if registry_name not in listing.LIST_NAMES:
        abort(404)
    outcome = actions.empty_registry(conn(), queue_name, registry_name)
    return as_json(outcome.as_json(), outcome.code)


#: Blueprint endpoint name -> our replacement.
REPLACED = {
    f"rq_dashboard.{view.__name__}": view
    for view in (
        list_queues,
        list_jobs,
        job_info,
        list_workers,
        job_view,
        jobs_overview,
        queues_overview,
        workers_overview,
        delete_job_view,
        requeue_job_view,
        requeue_all,
        empty_queue,
    )
}
