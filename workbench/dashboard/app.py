"""rq-dashboard as a library: its blueprint inside our Flask app, on our broker, JSON only.

What we change, and how, without forking it:
- views: `views.REPLACED` swaps the blueprint endpoints that unpickle, crash or mislead;
- templates: ours under `templates/rq_dashboard/` win over the blueprint's of the same path
  (Flask looks in the app's folder first); they render text only through DOM text nodes;
- scripts: one static file of ours instead of rq-dashboard's inline scripts, so the CSP can
  forbid inline code and eval;
- requests and responses: `security.install` (auth, CSRF, headers).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from rq_dashboard import default_settings
from rq_dashboard.web import blueprint, setup_rq_connection
from rq_dashboard.web import config as dashboard_config

from ..jobs import SERIALIZER
from . import security, views

HERE = Path(__file__).resolve().parent
#: Our static files live beside rq-dashboard's (served at /static by its blueprint), not over them.
STATIC_URL_PATH = "/workbench-static"


def create_app(redis_url: str, credentials: security.Credentials | None = None) -> Flask:
    """A Flask app serving rq-dashboard against `redis_url` with the JSON serializer."""
    dashboard_config.serializer = SERIALIZER
    app = Flask(
        __name__,
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path=STATIC_URL_PATH,
    )
    app.config.from_object(default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = [redis_url]
    app.register_blueprint(blueprint, url_prefix="")
    for endpoint, view in views.REPLACED.items():
        if endpoint not in app.view_functions:
            raise RuntimeError(f"rq-dashboard has no endpoint {endpoint}; its version changed under us")
        app.view_functions[endpoint] = view
    security.install(app, credentials)
    with app.app_context():
        setup_rq_connection(app)
    return app
