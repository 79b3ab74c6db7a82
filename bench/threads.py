"""Many I/O-bound jobs per worker (`consumer_main.py --threads N`, issue 17): ours only.

- Scrapes of a loopback page that answers after a delay (a slow site), on the same pool of
  workers with `--threads 1` and then `--threads N`: the speed-up is makespan(1) / makespan(N).
- Sleeps on workers × threads slots: the makespan against the ideal (jobs × seconds / slots).

Plain RQ runs one job per worker process and has no such setting: its column stays empty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .records import finished, makespan_s, wait_ended
from .sides import OURS, SLEEP, Side, wait_registered

if TYPE_CHECKING:
    from .rows import Context  # rows imports this module

SCRAPE = "task_def.scrape.scrape"
PAGE = b"<!doctype html><html><head><title>Slow page</title></head><body><p>one two three</p></body></html>"


def thread_rows(ctx: Context, side: Side) -> dict[str, float]:
    """The scrape speed-up of --threads N over --threads 1, and the sleeps' makespan on N threads."""
    if side.key != OURS:
        return {}  # plain RQ: one job per process, nothing to compare
    sizes = ctx.sizes
    with slow_site(sizes.scrape_delay_s) as address:
        spans = {threads: _makespan(ctx, f"scrape{threads}", threads, address) for threads in (1, sizes.threads)}
    sleeps = _makespan(ctx, "tsleep", sizes.threads, None)
    return {"threads_scrape": spans[1] / spans[sizes.threads], "threads_sleep": sleeps}


def _makespan(ctx: Context, name: str, threads: int, address: str | None) -> float:
    """Start the pool, enqueue the jobs (scrapes of `address`, or sleeps), time first enqueue to last end."""
    sizes, side = ctx.sizes, Side(OURS, "ours")
    queue = ctx.queue(name, side)
    env = {**ctx.env, "SCRAPE_ALLOWED_HOSTS": address or ""}
    group = side.start(ctx.url, queue, sizes.thread_workers, ctx.logdir, env, burst=False, threads=threads)
    try:
        wait_registered(ctx.conn, queue, sizes.thread_workers, group)
        time.sleep(0.5)  # the workers' start-up maintenance passes; then they wait on the queue
        if address is not None:
            kwargs = [{"url": f"http://{address}/"}] * sizes.scrape_jobs
        else:
            kwargs = [{"seconds": sizes.thread_sleep_s}] * sizes.thread_sleep_jobs
        ids = side.batch(ctx.conn, queue, SCRAPE if address else SLEEP, kwargs)
        wait_ended(ctx.conn, queue, len(ids), timeout_s=120 + len(ids))
        return makespan_s(finished(ctx.conn, ids, f"ours --threads {threads}"))
    finally:
        group.close()


@contextmanager
def slow_site(delay_s: float) -> Iterator[str]:
    """A loopback HTTP server whose every page answers after `delay_s` (one thread per request)."""

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # every slot of the pool may connect at once
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, name="slow site", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
