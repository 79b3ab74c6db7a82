"""rq-dashboard as a library: its blueprint inside our Flask app, on our broker, JSON only."""

from __future__ import annotations

from flask import Flask
from rq_dashboard import default_settings
from rq_dashboard.web import blueprint, setup_rq_connection
from rq_dashboard.web import config as dashboard_config

from .jobs import SERIALIZER


def create_app(redis_url: str) -> Flask:
    """A Flask app serving rq-dashboard against `redis_url` with the JSON serializer."""
    dashboard_config.serializer = SERIALIZER
    app = Flask(__name__)
    app.config.from_object(default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = [redis_url]
    app.register_blueprint(blueprint, url_prefix="")
    with app.app_context():
        setup_rq_connection(app)
    return app
