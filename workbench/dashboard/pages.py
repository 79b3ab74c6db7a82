"""What the workbench adds to rq-dashboard: stop, bulk actions, failed across queues, search,
batches, trends, worker stop and /metrics. Pages are templates filled in by the static scripts
from the JSON views beside them; actions are same-origin POSTs (see security.py)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from .. import batches, defaults, search, stats
from ..catalog_load import load_catalog
from ..known_queues import queue_names
from . import actions, batch_view, listing, metrics, records
from .views import abandoned_rows, as_json, conn, render_page

blueprint = Blueprint("workbench", __name__)


def _queue_names() -> list[str]:
    return queue_names(conn())


def _task_names() -> list[str]:
    return sorted(load_catalog())


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    return default if raw is None else listing.whole(raw, name.replace("_", " "), maximum)


@blueprint.errorhandler(listing.BadInput)
def _bad_input(exc: listing.BadInput) -> ResponseReturnValue:
    if request.path.endswith(".json") or request.method == "POST":
        return as_json({"status": "ERROR", "error": str(exc)}, 400)
    return render_page("rq_dashboard/error.html", "", 400, sentence=str(exc))


# -- failed, all queues ------------------------------------------------------------------


@blueprint.route("/<int:instance_number>/view/failed")
def failed_view(instance_number: int) -> ResponseReturnValue:
    return render_page("rq_dashboard/failed.html", "failed", queue_names=_queue_names(), task_names=_task_names())


@blueprint.route("/<int:instance_number>/data/failed.json")
def failed_data(instance_number: int) -> ResponseReturnValue:
    queue = request.args.get("queue") or None
    task = request.args.get("task") or None
    per_page = _int_arg("per_page", defaults.DASHBOARD_PAGE_ROWS, defaults.DASHBOARD_MAX_PER_PAGE)
    page = _int_arg("page", 1)
    names = _queue_names()
    chosen = [queue] if queue else names
    found = search.failed_jobs(conn(), chosen, task, (page - 1) * per_page, per_page)
    rows = records.read_rows(conn(), found.ids)
    return as_json({"jobs": rows, "total": found.total, "more": found.more, "page": page, "per_page": per_page})


# -- search -----------------------------------------------------------------------------


@blueprint.route("/<int:instance_number>/view/search")
def search_view(instance_number: int) -> ResponseReturnValue:
    return render_page("rq_dashboard/search.html", "search", query=request.args.get("q", ""))


@blueprint.route("/<int:instance_number>/data/search.json")
def search_data(instance_number: int) -> ResponseReturnValue:
    query = request.args.get("q", "").strip()
    if not query:
        raise listing.BadInput("type a job id (6 characters or more), a task name, or text to look for.")
    started = time.monotonic()
    found = search.search(conn(), query, resume=request.args.get("from"))
    rows = records.read_rows(conn(), found.ids)
    abandoned_rows(conn(), rows)
    return as_json(
        {
            "query": query,
            "jobs": rows,
            "scanned": found.scanned,
            "total": found.total,
            "complete": found.complete,
            "next": found.resume,
            "seconds": round(time.monotonic() - started, 3),
        }
    )


# -- batches ----------------------------------------------------------------------------


@blueprint.route("/<int:instance_number>/view/batches")
def batches_view(instance_number: int) -> ResponseReturnValue:
    return render_page("rq_dashboard/batches.html", "batches")


@blueprint.route("/<int:instance_number>/data/batches.json")
def batches_data(instance_number: int) -> ResponseReturnValue:
    return as_json({"batches": batch_view.recent(conn(), _int_arg("limit", 20, 100))})


@blueprint.route("/<int:instance_number>/view/batch/<batch_id>")
def batch_page(instance_number: int, batch_id: str) -> ResponseReturnValue:
    found = batches.load(conn(), batch_id) is not None
    return render_page("rq_dashboard/batch.html", "batches", 200 if found else 404, batch_id=batch_id, found=found)


@blueprint.route("/<int:instance_number>/data/batch/<batch_id>.json")
def batch_data(instance_number: int, batch_id: str) -> ResponseReturnValue:
    page = _int_arg("page", 1)
    per_page = _int_arg("per_page", defaults.DASHBOARD_PAGE_ROWS, defaults.DASHBOARD_MAX_PER_PAGE)
    data = batch_view.detail(conn(), batch_id, page, per_page)
    if data is None:
        return as_json({"error": f"no batch {batch_id} exists in the broker (it may have expired)."}, 404)
    abandoned_rows(conn(), data["jobs"])
    return as_json(data)


# -- trends -----------------------------------------------------------------------------


@blueprint.route("/<int:instance_number>/view/trends")
def trends_view(instance_number: int) -> ResponseReturnValue:
    return render_page("rq_dashboard/trends.html", "trends")


@blueprint.route("/<int:instance_number>/data/trends.json")
def trends_data(instance_number: int) -> ResponseReturnValue:
    connection = conn()
    moment = time.time()
    queues = stats.queue_minutes(connection, _queue_names(), moment)
    return as_json(
        {
            "now_minute": stats.minute_of(moment),
            "queues": [
                {
                    "name": name,
                    "minutes": [
                        {"minute": m.minute, **m.counts, "queued": m.queued, "started": m.started} for m in minutes
                    ],
                }
                for name, minutes in queues.items()
            ],
            "tasks": [
                {"task": task, "hour": figures["hour"].as_dict(), "day": figures["day"].as_dict()}
                for task, figures in stats.task_durations(connection, moment).items()
            ],
        }
    )


# -- actions ----------------------------------------------------------------------------


@blueprint.route("/job/<job_id>/stop", methods=["POST"])
def stop_job(job_id: str) -> ResponseReturnValue:
    outcome = actions.stop_job(conn(), job_id)
    return as_json(outcome.as_json(), outcome.code)


@blueprint.route("/jobs/bulk", methods=["POST"])
def bulk() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise listing.BadInput('send a JSON object: {"action": "requeue" | "delete" | "stop", "ids": [...]}.')
    action, ids = body.get("action"), body.get("ids")
    if action not in actions.ACTIONS:
        raise listing.BadInput(f"the action must be requeue, delete or stop, not {str(action)[:40]!r}.")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise listing.BadInput("ids must be a non-empty list of job ids.")
    if len(ids) > defaults.DASHBOARD_MAX_BULK:
        raise listing.BadInput(f"at most {defaults.DASHBOARD_MAX_BULK} jobs per request, not {len(ids)}.")
    if action == "delete" and current_app.config.get("RQ_DASHBOARD_DISABLE_DELETE"):
        return as_json({"status": "DISABLED"})
    outcome = actions.bulk(conn(), action, ids)
    return as_json(outcome.as_json(), outcome.code)


@blueprint.route("/worker/<name>/stop", methods=["POST"])
def stop_worker(name: str) -> ResponseReturnValue:
    outcome = actions.stop_worker(conn(), name, force=False)
    return as_json(outcome.as_json(), outcome.code)


@blueprint.route("/worker/<name>/force-stop", methods=["POST"])
def force_stop_worker(name: str) -> ResponseReturnValue:
    outcome = actions.stop_worker(conn(), name, force=True)
    return as_json(outcome.as_json(), outcome.code)


# -- metrics ----------------------------------------------------------------------------


@blueprint.route("/metrics")
def metrics_view() -> ResponseReturnValue:
    body, content_type = metrics.render(conn())
    return Response(body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"})
