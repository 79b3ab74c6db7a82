"""`python consumer_main.py`: start 1-10 supervised workers, show them live, stop them on Ctrl-C."""

from __future__ import annotations

import signal
import time

import redis
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import defaults, validators
from ..catalog_load import load_catalog
from ..errors import EXIT_OK
from ..pool import Supervisor
from ..queues import queue_sizes
from ..workers_view import worker_rows
from .common import ArgumentParser, add_broker_flag, err_console, open_broker, outside, require_tty, run, say
from .prompts import ask


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="consumer_main.py", description="Run supervised RQ workers.")
    add_broker_flag(parser)
    parser.add_argument("--workers", help=f"how many workers, {defaults.MIN_WORKERS}-{defaults.MAX_WORKERS}")
    parser.add_argument(
        "--threads",
        help=f"jobs each worker runs at once, {defaults.MIN_THREADS}-{defaults.MAX_THREADS} (default "
        f"{defaults.DEFAULT_THREADS}); only I/O-bound tasks share a worker",
    )
    parser.add_argument("--queue", action="append", help="queue to serve (repeat, in priority order)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--max-jobs", help="each worker exits after this many jobs")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    load_catalog()  # WORKBENCH_TASKS: a module that fails to import stops the consumer here, before any worker
    workers = validators.worker_count(args.workers) if args.workers is not None else None
    threads = validators.thread_count(args.threads) if args.threads is not None else None
    queues = validators.queue_names(args.queue) if args.queue else None
    max_jobs = validators.whole_number(args.max_jobs, "--max-jobs", 1, 10**9) if args.max_jobs else None
    if workers is None:
        require_tty("--workers")
    if queues is None:
        require_tty("--queue")
    broker = open_broker(args.redis_url, announce=True)
    if workers is None:
        workers = ask(f"How many workers ({defaults.MIN_WORKERS}-{defaults.MAX_WORKERS})", validators.worker_count)
        if threads is None:
            threads = ask(
                f"Jobs per worker at once ({defaults.MIN_THREADS}-{defaults.MAX_THREADS}; only I/O-bound tasks share)",
                validators.thread_count,
                str(defaults.DEFAULT_THREADS),
            )
    if queues is None:
        sizes = queue_sizes(broker.connection)
        known = ", ".join(f"{name} ({size:,} queued, {listening} workers)" for name, size, listening in sizes)
        say(f"Known queues: {known or 'none yet'}")
        queues = ask("Queue(s), comma-separated in priority order", validators.queue_names, defaults.DEFAULT_QUEUE)
    threads = threads if threads is not None else defaults.DEFAULT_THREADS
    return supervise(broker.url, queues, workers, burst=args.burst, max_jobs=max_jobs, threads=threads)


def supervise(
    url: str,
    queues: list[str],
    workers: int,
    *,
    burst: bool,
    max_jobs: int | None,
    threads: int = defaults.DEFAULT_THREADS,
) -> int:
    """Run the pool until it ends or Ctrl-C: once for a warm stop, twice for a cold one."""
    pool = Supervisor(
        url,
        queues,
        workers,
        burst=burst,
        max_jobs=max_jobs,
        threads=threads,
        on_event=lambda name, message: err_console.print(Text.assemble(outside(name, "bold"), " ", outside(message))),
        on_log=print_lines,
    )
    interrupts: list[float] = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupts.append(time.monotonic()))
    signal.signal(signal.SIGTERM, lambda signum, frame: interrupts.append(time.monotonic()))
    pool.start_workers()
    each = f", up to {threads} I/O-bound jobs each" if threads > 1 else ""
    say(f"Started {workers} workers{each} on {', '.join(queues)}. Ctrl-C: warm stop; twice: cold stop.")
    stopping, cold_at, next_draw = 0, None, 0.0
    with Live(render(pool), console=err_console, auto_refresh=False, transient=False) as live:
        while not pool.all_stopped:
            pool.poll(0.2)
            if len(interrupts) > stopping:
                stopping = len(interrupts)
                cold = stopping >= 2
                pool.stop_workers(cold=cold)
                err_console.print(
                    "Cold stop: running jobs are being stopped."
                    if cold
                    else "Warm stop: waiting for running jobs to finish (Ctrl-C again for a cold stop)."
                )
                cold_at = time.monotonic() if cold else cold_at
            if cold_at and time.monotonic() - cold_at > defaults.COLD_STOP_GRACE_S:
                pool.kill_all()
            if time.monotonic() >= next_draw:
                next_draw = time.monotonic() + defaults.CONSUMER_REFRESH_S
                live.update(render(pool), refresh=True)
        live.update(render(pool), refresh=True)
    if not err_console.is_terminal:
        err_console.line()  # a pipe gets the last table without a trailing newline
    if any(slot.state == "stopped" for slot in pool.slots) and not stopping:
        err_console.print("All workers were stopped on request.")
    else:
        err_console.print("All workers have stopped.")
    return EXIT_OK


def print_lines(lines: list[tuple[str, str]]) -> None:
    """Worker output, each line prefixed with its worker's name, printed as one block."""
    block = Text()
    for number, (name, line) in enumerate(lines):
        block.append("\n" if number else "").append(outside(name, "dim")).append(" ").append(outside(line))
    err_console.print(block)


def render(pool: Supervisor) -> Group | Table:
    """One line per worker; a banner while the broker is unreachable."""
    table = Table(title="Workers", expand=False)
    for column in ("worker", "state", "current job", "progress", "done", "failed"):
        table.add_column(column)
    down = pool.broker_down_since
    rows = None
    if down is None:
        try:
            rows = worker_rows(pool.connection, pool.slots)
        except (redis.ConnectionError, redis.TimeoutError):
            down = time.monotonic()
    if rows is None:
        rows = [(slot.name, slot.state, "?", "?", "?", "?") for slot in pool.slots]
    for row in rows:
        table.add_row(*(outside(cell) for cell in row))  # names, job ids: broker data, shown inertly
    if down is None:
        return table
    banner = Text(
        f"Broker unreachable for {time.monotonic() - down:.0f} s; workers reconnect by themselves.", style="bold red"
    )
    return Group(banner, table)


def entry() -> int:
    return run(main)
