"""The dashboard: rq-dashboard's blueprint in our app, its security defects closed (see app.py)."""

from .app import DepthSampler, create_app
from .security import Credentials, check_exposure, credentials_from_env, shown_url, trusted_hosts

__all__ = [
    "Credentials",
    "DepthSampler",
    "check_exposure",
    "create_app",
    "credentials_from_env",
    "shown_url",
    "trusted_hosts",
]
