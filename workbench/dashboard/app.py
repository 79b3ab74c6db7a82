"""rq-dashboard as a library: its blueprint inside our Flask app, on our broker, JSON only.

What we change, and how, without forking it:
- views: `views.REPLACED` swaps the blueprint endpoints that unpickle, crash or mislead;
- templates: ours under `templates/rq_dashboard/` win over the blueprint's of the same path
  (Flask looks in the app's folder first); they render text only through DOM text nodes;
- scripts: one static file of ours instead of rq-dashboard's inline scripts, so the CSP can
  forbid inline code and eval;
- what it adds: `pages.blueprint` (stop, bulk actions, failed across queues, search, batches,
  trends, worker stop, /metrics) beside rq-dashboard's routes, under the same guard;
- requests and responses: `security.install` (Host check, auth, CSRF, headers): on loopback only
  loopback Host names are served, so a DNS-rebinding page cannot pose as same-origin;
- the broker selector shows the URL with every credential masked (the real URL stays in the client);
- the connection: one client for the app, where rq-dashboard made a new one per request;
- queue depth: sampled once a minute (under a lease shared by every dashboard) by `DepthSampler`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import redis
from flask import Response, abort, current_app, request
from rq_dashboard import default_settings
from rq_dashboard.web import blueprint
from rq_dashboard.web import config as dashboard_config

from .. import defaults, stats
from ..broker import client as broker_client
from ..jobs import SERIALIZER
from ..text import printable
from . import pages, resume, security, views

HERE = Path(__file__).resolve().parent
#: Our static files live beside rq-dashboard's (served at /static by its blueprint), not over them.
STATIC_URL_PATH = "/workbench-static"


def create_app(
    redis_url: str,
    credentials: security.Credentials | None = None,
    trusted_hosts: list[str] | None = security.LOOPBACK_NAMES,
) -> views.DashboardApp:
    """A Flask app serving rq-dashboard against `redis_url` with the JSON serializer.

    `trusted_hosts` are the names the browser may use for us (None: any, for an authenticated,
    network-facing dashboard).
    """
    dashboard_config.serializer = SERIALIZER
    app = views.DashboardApp(
        __name__,
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path=STATIC_URL_PATH,
    )
    app.config.from_object(default_settings)
    # Only the masked form reaches templates and JSON; the connection below uses the real URL.
    app.config["RQ_DASHBOARD_REDIS_URL"] = [security.shown_url(redis_url)]
    app.config["WORKBENCH_TRUSTED_HOSTS"] = trusted_hosts
    app.register_blueprint(blueprint, url_prefix="")
    app.register_blueprint(pages.blueprint, url_prefix="")
    # rq-dashboard's hook opened a new client per request and raised (HTTP 500) for unknown instances.
    app.before_request_funcs["rq_dashboard"] = [_only_instance_zero]
    app.before_request_funcs["workbench"] = [_only_instance_zero]
    app.context_processor(_poll_interval)
    for endpoint, view in views.REPLACED.items():
        if endpoint not in app.view_functions:
            raise RuntimeError(f"rq-dashboard has no endpoint {endpoint}; its version changed under us")
        app.view_functions[endpoint] = view
    resume.install(app)  # issue 19: "Restart from zero" beside Requeue
    security.install(app, credentials)
    app.redis_conn = broker_client(redis_url, health_check_interval=defaults.BROKER_HEALTH_CHECK_S)
    app.register_error_handler(redis.RedisError, _broker_unavailable)
    return app


def _poll_interval() -> dict:
    return {"poll_interval": current_app.config.get("RQ_DASHBOARD_POLL_INTERVAL", 2500)}


class DepthSampler(threading.Thread):
    """Samples every queue's depth once a minute for the trends page (`stats.sample_depths`).

    Every dashboard runs one; the per-minute lease makes one sample per minute in all.
    """

    def __init__(self, connection: redis.Redis, interval_s: float = defaults.DEPTH_SAMPLE_S) -> None:
        super().__init__(name="queue depth sampler", daemon=True)
        self.connection = connection
        self.interval_s = interval_s
        self._stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                stats.sample_depths(self.connection)
            except redis.RedisError:
                pass  # the broker is away; the pages say so, and the next minute samples again
            if self._stopped.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stopped.set()


def _only_instance_zero() -> None:
    """We serve one broker: instance 0. Other numbers are pages that do not exist."""
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)


def _broker_unavailable(exc: redis.RedisError) -> Response:
    """One sentence instead of a traceback page while the broker is down; the pages retry by themselves."""
    if isinstance(exc, redis.ResponseError):  # it answered: a refusal (a key of another type, a denied command)
        reason = printable(" ".join(str(exc).split()))[:300]
        return Response(f"The broker refused a read ({reason}).\n", 503, mimetype="text/plain")
    return Response(f"The broker is not answering ({type(exc).__name__}).\n", 503, mimetype="text/plain")
