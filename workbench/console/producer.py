"""`python producer_main.py`: enqueue catalog tasks by flags or interactively, and optionally wait."""

from __future__ import annotations

import json
import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import defaults, validators
from ..catalog import TaskSpec, task_named
from ..errors import EXIT_FAILURE, EXIT_OK
from ..producer import Batch, Outcome, enqueue, follow, listening_workers, outcomes
from .common import ArgumentParser, add_broker_flag, err_console, open_broker, out_console, require_tty, run


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="producer_main.py", description="Enqueue catalog tasks onto a queue.")
    add_broker_flag(parser)
    parser.add_argument("--task", help="catalog task name (see --list-tasks)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="task parameter")
    parser.add_argument("--count", help=f"copies to enqueue, {defaults.MIN_COUNT}-{defaults.MAX_COUNT:,}")
    parser.add_argument("--queue", help=f"queue name (default {defaults.DEFAULT_QUEUE})")
    parser.add_argument("--timeout", help="job timeout in seconds (default: the task's own)")
    parser.add_argument("--retries", help=f"retries on failure, 0-{defaults.MAX_RETRIES}")
    parser.add_argument("--at-front", action="store_true", help="put the jobs at the front of the queue")
    parser.add_argument("--wait", action="store_true", help="wait for the jobs and show their results")
    parser.add_argument("--json", action="store_true", help="print one JSON object per job on stdout")
    parser.add_argument("--list-tasks", action="store_true", help="list the task catalog and exit")
    return parser


def catalog() -> dict[str, TaskSpec]:
    from task_def import CATALOG

    return CATALOG


def batch_from_flags(args) -> Batch:
    """Validate every flag into a Batch, before anything touches the broker."""
    spec = task_named(catalog(), args.task)
    raw = dict(validators.key_value(item) for item in args.param)
    return Batch(
        spec=spec,
        params=spec.validate(raw),
        queue=validators.queue_name(args.queue) if args.queue is not None else defaults.DEFAULT_QUEUE,
        count=validators.job_count(args.count) if args.count is not None else 1,
        timeout_s=validators.job_timeout(args.timeout) if args.timeout is not None else None,
        retries=validators.retries(args.retries) if args.retries is not None else 0,
        at_front=args.at_front,
    )


def print_catalog() -> None:
    table = Table(title="Task catalog", show_lines=False)
    for column in ("task", "description", "parameters", "timeout"):
        table.add_column(column)
    for spec in catalog().values():
        params = "\n".join(p.describe() for p in spec.params) or "-"
        table.add_row(spec.name, spec.description, params, f"{spec.timeout_s:,} s")
    out_console.print(table)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.list_tasks:
        print_catalog()
        return EXIT_OK
    if args.task is None:
        require_tty("--task")
        from .producer_prompts import interactive

        return interactive(args)
    batch = batch_from_flags(args)
    broker = open_broker(args.redis_url)
    return submit(broker.connection, batch, wait=args.wait, as_json=args.json)


def submit(connection, batch: Batch, *, wait: bool, as_json: bool) -> int:
    """Enqueue one batch, warn if nobody serves its queue, and optionally wait for it."""
    jobs = enqueue(connection, batch)
    ids = [job.id for job in jobs]
    if not as_json:
        err_console.print(f"Enqueued {len(ids):,} × {batch.spec.name} on {batch.queue}.")
        if len(ids) <= 20:
            for job_id in ids:
                out_console.print(job_id)
    warn_if_unserved(connection, batch.queue)
    if not wait:
        if as_json:
            for job in jobs:
                print_json_line(job.id, batch, "queued")
        return EXIT_OK
    started = time.monotonic()
    watch(connection, ids, quiet=as_json)
    rows = outcomes(connection, ids)
    wall = time.monotonic() - started
    if as_json:
        for row in rows:
            print(json.dumps(row.__dict__, default=str), flush=True)
    else:
        print_results(rows, wall)
    bad = [row for row in rows if row.status != "finished"]
    if bad:
        err_console.print(f"{len(bad):,} of {len(rows):,} jobs did not finish; first: {bad[0].id} {bad[0].error}")
        return EXIT_FAILURE
    return EXIT_OK


def print_json_line(job_id: str, batch: Batch, status: str) -> None:
    record = {"id": job_id, "queue": batch.queue, "task": batch.spec.name, "params": dict(batch.params)}
    print(json.dumps({**record, "status": status}), flush=True)


def warn_if_unserved(connection, queue: str) -> None:
    if listening_workers(connection, queue) == 0:
        err_console.print(
            f"[yellow]warning:[/] no worker listens on {queue}; start one with: "
            f"python consumer_main.py --workers 4 --queue {queue}"
        )


def watch(connection, ids: list[str], *, quiet: bool) -> None:
    """Follow the jobs to the end, with a live progress bar unless quiet."""
    if quiet or not sys.stderr.isatty():
        for _ in follow(connection, ids):
            pass
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("running", total=len(ids))
        for snap in follow(connection, ids):
            bar.update(
                task,
                completed=snap.done + snap.running_progress,
                description=f"done {snap.finished:,}  failed {snap.failed:,}  of {snap.total:,}",
            )


def print_results(rows: list[Outcome], wall_s: float) -> None:
    table = Table(title="Results")
    for column in ("id", "task", "status", "duration", "result", "error"):
        table.add_column(column, overflow="fold")
    for row in rows[:50]:
        duration = f"{row.duration_s:.3f} s" if row.duration_s is not None else "-"
        result = json.dumps(row.result, default=str)[:60] if row.result is not None else "-"
        table.add_row(row.id[:8], row.task, row.status, duration, result, row.error or "")
    out_console.print(table)
    if len(rows) > 50:
        out_console.print(f"... and {len(rows) - 50:,} more.")
    out_console.print(summary_line(rows, wall_s))


def summary_line(rows: list[Outcome], wall_s: float) -> str:
    busy = sum(row.duration_s or 0.0 for row in rows)
    speedup = busy / wall_s if wall_s > 0 else 0.0
    return f"wall time {wall_s:.2f} s, summed job time {busy:.2f} s, speed-up {speedup:.2f}×"


def entry() -> int:
    return run(main)


if __name__ == "__main__":
    raise SystemExit(entry())
