"""The dashboard's "Restart from zero" (issue 19): requeue a failed or stopped job without its checkpoint.

The job page's Requeue keeps the checkpoint (the job resumes, `workbench.requeue`); this action,
beside it, discards it first. A POST like every state change, so `security.install` holds it to
the same origin.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from rq.exceptions import InvalidJobOperation, NoSuchJobError

from ..requeue import requeue
from .views import conn

ENDPOINT = "workbench_restart_job"


def restart_job_view(job_id: str) -> ResponseReturnValue:
    try:
        requeue(conn(), job_id, restart=True)
    except NoSuchJobError:
        body, code = {"status": "ERROR", "error": f"no job {job_id} exists in the broker."}, 404
    except InvalidJobOperation as exc:
        body, code = {"status": "ERROR", "error": f"job {job_id} cannot be restarted: {exc}"}, 409
    else:
        body, code = {"status": "OK", "message": f"job {job_id} re-queued to start from zero."}, 200
    return jsonify(body), code, {"Cache-Control": "no-store"}


def install(app: Flask) -> None:
    """POST /job/<id>/restart, beside rq-dashboard's /job/<id>/requeue."""
    app.add_url_rule("/job/<job_id>/restart", ENDPOINT, restart_job_view, methods=["POST"])
