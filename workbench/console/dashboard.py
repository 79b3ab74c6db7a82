"""`python dashboard_main.py`: rq-dashboard on 127.0.0.1:9181 against the workbench's broker.

Basic-auth credentials come from DASHBOARD_USERNAME / DASHBOARD_PASSWORD only: a flag would show
the password to every local user in the process list.
"""

from __future__ import annotations

import logging
import os
import socket

from werkzeug.serving import make_server

from .. import defaults, validators
from ..dashboard import DepthSampler, check_exposure, create_app, credentials_from_env, trusted_hosts
from ..errors import EXIT_OK, WorkbenchError
from .common import ArgumentParser, add_broker_flag, describe_broker, open_broker, run, say


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="dashboard_main.py",
        description="Serve rq-dashboard for the workbench. Basic auth: set "
        f"{defaults.ENV_DASHBOARD_USERNAME} and {defaults.ENV_DASHBOARD_PASSWORD} in the environment.",
    )
    add_broker_flag(parser)
    parser.add_argument("--port", default=str(defaults.DASHBOARD_PORT), help="port (default 9181)")
    parser.add_argument("--bind", default=defaults.DASHBOARD_HOST, help="address (default 127.0.0.1)")
    return parser


def listen(bind: str, port: int) -> socket.socket:
    """A listening socket; bound here because werkzeug prints and exits on its own when it cannot."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        return socket.create_server((bind, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkbenchError(f"cannot listen on {bind}:{port} ({reason}); choose another --port.") from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    port = validators.whole_number(args.port, "--port", 1, 65535)
    credentials = credentials_from_env(os.environ)
    check_exposure(args.bind, credentials)
    broker = open_broker(args.redis_url, announce=False)  # the start-up line says which broker
    app = create_app(broker.url, credentials, trusted_hosts(args.bind))
    listener = listen(args.bind, port)
    try:
        server = make_server(args.bind, port, app, threaded=True, fd=listener.fileno())
    finally:
        listener.close()  # werkzeug works on its own duplicate of the socket
    # One line per request on stderr would bury the start-up line; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    auth = "Basic auth on" if credentials else "no auth, loopback only"
    host = f"[{args.bind}]" if ":" in args.bind else args.bind
    say(f"Dashboard at http://{host}:{port} ({auth}). {describe_broker(broker)} Ctrl-C stops it.")
    sampler = DepthSampler(app.redis_conn)
    sampler.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop()
        server.server_close()
    return EXIT_OK


def entry() -> int:
    return run(main)
