"""`python dashboard_main.py`: rq-dashboard on 127.0.0.1:9181 against the workbench's broker."""

from __future__ import annotations

from werkzeug.serving import make_server

from .. import defaults, validators
from ..dashboard import create_app
from ..errors import EXIT_OK, WorkbenchError
from .common import ArgumentParser, add_broker_flag, err_console, open_broker, run


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="dashboard_main.py", description="Serve rq-dashboard for the workbench.")
    add_broker_flag(parser)
    parser.add_argument("--port", default=str(defaults.DASHBOARD_PORT), help="port (default 9181)")
    parser.add_argument("--bind", default=defaults.DASHBOARD_HOST, help="address (default 127.0.0.1)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    port = validators.whole_number(args.port, "--port", 1, 65535)
    broker = open_broker(args.redis_url)
    app = create_app(broker.url)
    try:
        server = make_server(args.bind, port, app, threaded=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot listen on {args.bind}:{port} ({exc.strerror}); choose another --port.") from None
    err_console.print(f"Dashboard at http://{args.bind}:{port} (broker {broker.masked_url}). Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def entry() -> int:
    return run(main)
