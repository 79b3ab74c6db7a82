"""`make demo` / `make stop`: the whole workbench in one command, and its clean shutdown.

`start` brings up the broker, the dashboard and 4 workers in the background, enqueues a mixed
batch, shows it running and prints the results. `stop` ends exactly what `start` started.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redis import Redis
from rq.worker import Worker

from .. import broker as broker_mod
from .. import defaults
from ..errors import EXIT_FAILURE, EXIT_OK, WorkbenchError
from ..jobs import make_queue
from ..processes import read_pid, start_background, stop
from ..producer import Batch, enqueue, outcomes
from .common import ArgumentParser, add_broker_flag, open_broker, out_console, run, say
from .producer_flow import all_tasks
from .producer_view import print_results, watch

DEMO_PAGE = b"""<!doctype html><html><head><title>Workbench demo page</title></head>
<body><h1>Parallel jobs with RQ</h1><h2>Why a queue</h2><p>Long jobs run in workers, not in your shell.</p>
<a href="https://python-rq.org/">RQ</a> <a href="https://github.com/rq/rq">source</a></body></html>"""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="demo", description="Run or stop the workbench demo.")
    parser.add_argument("action", choices=("start", "stop"))
    add_broker_flag(parser)
    parser.add_argument("--dashboard-port", default=str(defaults.DASHBOARD_PORT))
    parser.add_argument("--page-port", default=str(defaults.DEMO_PAGE_PORT))
    parser.add_argument("--small", action="store_true", help="a tiny batch (for tests)")
    return parser


def run_dir() -> Path:
    return broker_mod.data_dir() / "run"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "stop":
        return stop_demo()
    return start_demo(args)


def start_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    broker = open_broker(args.redis_url, announce=True)
    env = {**os.environ, defaults.ENV_REDIS_URL: broker.url}
    env["SCRAPE_ALLOWED_HOSTS"] = f"127.0.0.1:{args.page_port}"
    root = defaults.PROJECT_ROOT
    _ensure("dashboard", [sys.executable, "dashboard_main.py", "--port", args.dashboard_port], env, root)
    workers = str(defaults.DEMO_WORKERS)
    consumer = [sys.executable, "consumer_main.py", "--workers", workers, "--queue", defaults.DEFAULT_QUEUE]
    _ensure("consumer", consumer, env, root)
    _wait_for_workers(broker.connection, defaults.DEMO_WORKERS)
    page = _serve_page(int(args.page_port))
    try:
        batches = demo_batches(args.small, args.page_port, page is not None)
        ids = [job.id for batch in batches for job in enqueue(broker.connection, batch)]
        names = ", ".join(f"{batch.batch_id} ({batch.count} × {batch.spec.name})" for batch in batches)
        say(f"Enqueued {len(ids)} jobs on {defaults.DEFAULT_QUEUE} in batches {names}; watching them run.")
        t0 = time.monotonic()
        watch(broker.connection, ids, quiet=False)
        print_results(outcomes(broker.connection, ids), time.monotonic() - t0, all_tasks())
    finally:
        if page is not None:
            page.shutdown()
    say(
        f"Dashboard: http://127.0.0.1:{args.dashboard_port}  ·  {defaults.DEMO_WORKERS} workers still running on "
        f"{defaults.DEFAULT_QUEUE}  ·  stop everything with: make stop  (demo took {time.monotonic() - started:.1f} s)",
        console=out_console,
    )
    return EXIT_OK


def demo_batches(small: bool, page_port: str, with_page: bool) -> list[Batch]:
    from ..catalog_load import load_catalog

    CATALOG = load_catalog()  # noqa: N806 - the catalog, read-only

    sleeps, primes = (2, 1) if small else (8, 4)
    limit = 5_000_000 if small else 300_000_000  # about half a second of sieving each on this machine
    batches = [
        Batch(CATALOG["sleep"], CATALOG["sleep"].validate({"seconds": 0.5 if small else 1.5}), count=sleeps),
        Batch(CATALOG["count_primes"], CATALOG["count_primes"].validate({"limit": limit}), count=primes),
    ]
    if "scrape" in CATALOG and with_page:
        url = f"http://127.0.0.1:{page_port}/"
        batches.append(Batch(CATALOG["scrape"], CATALOG["scrape"].validate({"url": url})))
    return batches


def _ensure(name: str, command: list[str], env: dict, root: Path) -> None:
    pidfile = run_dir() / f"{name}.pid"
    if read_pid(pidfile):
        say(f"The demo's {name} is already running (pid {read_pid(pidfile)}).")
        return
    pid = start_background(command, pidfile, run_dir() / f"{name}.log", env, root)
    say(f"Started the {name} (pid {pid}, log {run_dir() / f'{name}.log'}).")


def _wait_for_workers(connection: Redis, count: int, timeout_s: float = 20.0) -> None:
    queue = make_queue(defaults.DEFAULT_QUEUE, connection)
    deadline = time.monotonic() + timeout_s
    while Worker.count(connection=connection, queue=queue) < count:
        if time.monotonic() > deadline or not read_pid(run_dir() / "consumer.pid"):
            raise WorkbenchError(f"the demo's workers did not start; see {run_dir() / 'consumer.log'}.")
        time.sleep(0.1)


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(DEMO_PAGE)))
        self.end_headers()
        self.wfile.write(DEMO_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_page(port: int) -> ThreadingHTTPServer | None:
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _Page)
    except OSError:
        say(f"Port {port} is taken; the demo skips its scrape job.")
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_demo() -> int:
    """Stop the demo's consumer (warm, then cold), its dashboard, and the embedded broker."""
    ok = True
    plans = {
        "consumer": [(signal.SIGINT, 20.0), (signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)],
        "dashboard": [(signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)],
    }
    for name, plan in plans.items():
        pidfile = run_dir() / f"{name}.pid"
        pid = read_pid(pidfile)
        if pid is None:
            pidfile.unlink(missing_ok=True)
            continue
        if stop(pid, plan):
            say(f"Stopped the {name} (pid {pid}).")
            pidfile.unlink(missing_ok=True)
        else:
            say(f"The {name} (pid {pid}) did not stop.")
            ok = False
    if broker_mod.stop_embedded(broker_mod.data_dir() / "broker"):
        say("Stopped the embedded broker.")
    return EXIT_OK if ok else EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(run(main))
