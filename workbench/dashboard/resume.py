"""The dashboard's "Restart from zero" (issue 19): requeue a failed or stopped job without its checkpoint.

The job page's Requeue keeps the checkpoint (the job resumes, `workbench.requeue`); this action,
beside it, discards it first. A POST like every state change, so `security.install` holds it to
the same origin.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from rq.exceptions import InvalidJobOperation, NoSuchJobError

from ..requeue import requeue

ENDPOINT = "workbench_restart_job"


def restart_job_view(job_id: str):
    try:
        requeue(current_app.redis_conn, job_id, restart=True)
    except NoSuchJobError:
        return jsonify({"status": "ERROR", "error": f"no job {job_id}"}), 404, {"Cache-Control": "no-store"}
    except InvalidJobOperation as exc:
        return jsonify({"status": "ERROR", "error": str(exc)}), 409, {"Cache-Control": "no-store"}
    return jsonify({"status": "OK"}), 200, {"Cache-Control": "no-store"}


def install(app: Flask) -> None:
    """POST /job/<id>/restart, beside rq-dashboard's /job/<id>/requeue."""
    app.add_url_rule("/job/<job_id>/restart", ENDPOINT, restart_job_view, methods=["POST"])
