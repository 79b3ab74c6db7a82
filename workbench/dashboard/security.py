"""What rq-dashboard leaves to its host app: who may look, who may change things, what the browser may run.

- Basic auth, with credentials from the environment only (argv is visible to every local user);
- state changes only by POST from our own origin (rq-dashboard has no CSRF defence at all);
- a content security policy that allows no inline script, no eval and no framing, plus nosniff;
- on loopback, only loopback Host names (a DNS-rebinding page would otherwise count as same-origin);
- broker URLs shown with every credential masked.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, Response, request

from .. import defaults
from ..broker import mask_url
from ..errors import UsageError

#: The endpoints that change state; each must be a same-origin POST.
STATE_CHANGING_ENDPOINTS = frozenset(
    {
        "rq_dashboard.delete_job_view",
        "rq_dashboard.requeue_job_view",
        "rq_dashboard.requeue_all",
        "rq_dashboard.empty_queue",
        "rq_dashboard.compact_queue",
        "workbench.stop_job",
        "workbench.bulk",
        "workbench.stop_worker",
        "workbench.force_stop_worker",
    }
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Host names that reach a loopback-bound dashboard; any other Host header is a DNS-rebinding page.
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]

#: Scripts and styles come only from our own static files: no inline code, no eval, no framing.
#: Bootstrap's CSS draws its select arrows and toggler icons as data: SVG images.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def accepts(self, username: str | None, password: str | None) -> bool:
        """Constant-time comparison of both parts, so timing tells nothing about either."""
        user_ok = hmac.compare_digest((username or "").encode(), self.username.encode())
        password_ok = hmac.compare_digest((password or "").encode(), self.password.encode())
        return user_ok and password_ok


def credentials_from_env(env: Mapping[str, str]) -> Credentials | None:
    """Basic-auth credentials from DASHBOARD_USERNAME / DASHBOARD_PASSWORD; both or neither."""
    username = env.get(defaults.ENV_DASHBOARD_USERNAME, "")
    password = env.get(defaults.ENV_DASHBOARD_PASSWORD, "")
    if not username and not password:
        return None
    if not username or not password:
        raise UsageError(
            f"set both {defaults.ENV_DASHBOARD_USERNAME} and {defaults.ENV_DASHBOARD_PASSWORD}, or neither."
        )
    return Credentials(username, password)


def is_loopback(address: str) -> bool:
    """Whether every address `address` resolves to is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None)
    except (socket.gaierror, UnicodeError):
        raise UsageError(f"--bind {address!r} is neither an IP address nor a known host name.") from None
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_exposure(bind: str, credentials: Credentials | None) -> None:
    """Refuse to serve an unauthenticated dashboard beyond this machine."""
    if credentials is None and not is_loopback(bind):
        raise UsageError(
            f"refusing to serve the dashboard on {bind} without a password; set "
            f"{defaults.ENV_DASHBOARD_USERNAME} and {defaults.ENV_DASHBOARD_PASSWORD}, or bind 127.0.0.1."
        )


def trusted_hosts(bind: str) -> list[str] | None:
    """The Host names to accept: loopback names (and `bind`) on loopback; any, once exposed with a password."""
    return [*LOOPBACK_NAMES, bind] if is_loopback(bind) else None


def host_name(header: str) -> str | None:
    """The host part of a Host header (`[::1]:9181` -> `::1`, `Example.org:80` -> `example.org`), or None."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and (rest[1:].isascii() and rest[1:].isdigit()))):
            return None
        return header[1:end]
    host, _, port = header.partition(":")
    if port and not (port.isascii() and port.isdigit()):
        return None
    return host or None


def host_allowed(header: str | None, trusted: list[str] | None) -> bool:
    """Whether a Host header names one of `trusted` (any host when `trusted` is None).

    Flask's TRUSTED_HOSTS cannot match IPv6 literals (`[::1]`), so a dashboard bound to ::1
    refused every request; this compares host names with brackets and ports taken off.
    """
    if trusted is None:
        return True
    name = host_name(header or "")
    return name is not None and name in {n.strip("[]").lower() for n in trusted}


#: Query parameters of a broker URL that carry or reveal credentials (redis-py accepts several).
SECRET_WORDS = ("pass", "secret", "token", "auth", "key", "user")


def shown_url(url: str) -> str:
    """`url` as the dashboard may show it: `workbench.broker.mask_url`, the one masking every output uses."""
    return mask_url(url)


def same_origin(url: str | None, host_url: str) -> bool:
    """Whether `url` (an Origin or Referer header) has the scheme, host and port of `host_url`."""
    if not url:
        return False
    theirs, ours = urlsplit(url), urlsplit(host_url)
    return (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower())


def install(app: Flask, credentials: Credentials | None) -> None:
    """Add authentication, the CSRF checks and the security headers to every response of `app`."""

    trusted = app.config.get("WORKBENCH_TRUSTED_HOSTS")

    @app.before_request
    def guard() -> Response | None:
        if not host_allowed(request.headers.get("Host"), trusted):
            return Response("Unknown host name.\n", 400, mimetype="text/plain")
        if credentials is not None:
            auth = request.authorization
            if auth is None or not credentials.accepts(auth.username, auth.password):
                return Response(
                    "Authentication required.\n",
                    401,
                    {"WWW-Authenticate": 'Basic realm="rq workbench dashboard", charset="UTF-8"'},
                    mimetype="text/plain",
                )
        if request.endpoint in STATE_CHANGING_ENDPOINTS and request.method != "POST":
            return Response("State changes need POST.\n", 405, {"Allow": "POST"}, mimetype="text/plain")
        if request.method not in SAFE_METHODS:
            # Browsers send Origin with every POST; Referer is the fallback for old ones. A request
            # with neither cannot be told apart from a forged one, so it is refused as well.
            claimed = request.headers.get("Origin") or request.headers.get("Referer")
            if not same_origin(claimed, request.host_url):
                return Response("Cross-origin request refused.\n", 403, mimetype="text/plain")
        return None

    @app.after_request
    def add_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
