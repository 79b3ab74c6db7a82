"""`python producer_main.py`: enqueue catalog tasks by flags or interactively, and optionally wait."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .. import defaults
from ..broker_watch import BrokerWatch
from ..catalog import TaskSpec, task_named
from ..catalog_load import load_catalog
from ..errors import EXIT_OK, JobsFailed, UsageError
from ..fanout import COMBINE_TASK, check_split, enqueue_split, split_count
from ..producer import Batch, Outcome, enqueue, listening_workers, make_batch, outcomes
from .common import ArgumentParser, add_broker_flag, err_console, open_broker, run
from .producer_view import print_catalog, print_fanout, print_results, watch

__all__ = ["entry", "main", "print_results", "submit", "watch"]  # print_results and watch: used by the demo


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
    parser.add_argument(
        "--split", help=f"count_primes: run the range as N parallel chunks and combine them (2-{defaults.MAX_SPLIT})"
    )
    parser.add_argument("--baseline", action="store_true", help="with --split --wait: also time the range as one job")
    parser.add_argument("--wait", action="store_true", help="wait for the jobs and show their results")
    parser.add_argument("--json", action="store_true", help="print one JSON object per job on stdout")
    parser.add_argument("--list-tasks", action="store_true", help="list the task catalog and exit")
    return parser


def catalog() -> dict[str, TaskSpec]:
    """The tasks a person may pick (internal steps such as the fan-out combiner are left out)."""
    return load_catalog().public()


def combine_spec() -> TaskSpec:
    return load_catalog()[COMBINE_TASK]


def parse_params(items: list[str]) -> dict[str, str]:
    """`--param KEY=VALUE` flags as a dict; a key given twice is refused rather than guessed."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, not {item!r}.")
        if key in params:
            raise UsageError(f"--param {key} is given twice.")
        params[key] = value
    return params


def batch_from_flags(args: argparse.Namespace) -> tuple[Batch, int]:
    """Validate every flag into a Batch and a split count, before anything touches the broker."""
    spec = task_named(catalog(), args.task.strip())
    batch = make_batch(
        spec,
        parse_params(args.param),
        queue=args.queue,
        count=args.count,
        timeout=args.timeout,
        retries=args.retries,
        at_front=args.at_front,
    )
    split = split_count(args.split) if args.split is not None else 1
    check_split(batch, split)
    if args.baseline and split == 1:
        raise UsageError("--baseline compares a split with one job, so it needs --split N.")
    return batch, split


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    load_catalog()  # WORKBENCH_TASKS: a module that fails to import stops the producer here
    if args.list_tasks:
        print_catalog(catalog(), to_stdout=True)
        return EXIT_OK
    if args.task is None:
        if not sys.stdin.isatty():
            raise UsageError("missing --task; stdin is not a terminal.")
        if args.json:
            raise UsageError("--json is for scripts, so it needs --task.")
        from .producer_prompts import interactive

        return interactive(args)
    batch, split = batch_from_flags(args)
    broker = open_broker(args.redis_url)
    return submit(broker.connection, batch, split=split, wait=args.wait, as_json=args.json, baseline=args.baseline)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while a batch is being enqueued, so it is never left half-reported; re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@dataclass(frozen=True)
class Sent:
    """An enqueued batch: its jobs (chunks first, combiner last for a split) and when it went in."""

    batch: Batch
    split: int
    jobs: list
    enqueued_at: datetime

    @property
    def ids(self) -> list[str]:
        return [job.id for job in self.jobs]


def send(connection, batch: Batch, split: int, *, as_json: bool, wait: bool, show: int | None = None) -> Sent:
    """Enqueue one batch (or one fan-out) and say so; Ctrl-C waits until it is wholly in and reported."""
    enqueued_at = datetime.now(UTC)
    with deferred_interrupt():
        if split > 1:
            jobs = enqueue_split(connection, batch, split, combine_spec()).jobs
        else:
            jobs = enqueue(connection, batch)
        announce(jobs, batch, split, as_json=as_json, wait=wait, show=show)
    warn_if_unserved(connection, batch.queue)
    return Sent(batch, split, jobs, enqueued_at)


def finish(connection, sent: Sent, *, as_json: bool, baseline: bool = False) -> None:
    """Wait for the jobs, show them, and raise JobsFailed if any did not finish."""
    broker = BrokerWatch(connection)
    watch(connection, sent.ids, sent.batch.queue, quiet=as_json)
    rows = outcomes(connection, sent.ids)
    restart = broker.check()
    if restart is not None:
        err_console.print(f"[yellow]warning:[/] {restart.sentence()}", highlight=False)
        lost = "lost: the broker restarted without keeping it"
        rows = [replace(row, error=lost) if row.status == "missing" else row for row in rows]
    wall = wall_time(rows, sent.enqueued_at)
    if as_json:
        for row in rows:
            print(json.dumps(row.__dict__, default=str), flush=True)
    else:
        print_results(rows, wall)
        if sent.split > 1:
            print_fanout(rows[-1], wall, time_one_job(connection, sent.batch) if baseline else None)
    fail_if_any(rows)


def submit(connection, batch: Batch, *, split: int = 1, wait: bool, as_json: bool, baseline: bool = False) -> int:
    """The scripted path: enqueue, warn if nobody serves the queue, and optionally wait (exit 1 on failures)."""
    sent = send(connection, batch, split, as_json=as_json, wait=wait)
    if wait:
        finish(connection, sent, as_json=as_json, baseline=baseline)
    return EXIT_OK


def announce(jobs: list, batch: Batch, split: int, *, as_json: bool, wait: bool, show: int | None = None) -> None:
    """Say what was enqueued: job ids on stdout (the first `show` of them, if given), or one JSON object each."""
    if as_json:
        if not wait:
            for job in jobs:
                record = {"id": job.id, "queue": batch.queue, "task": job.meta.get("task"), "params": job.kwargs}
                print(json.dumps({**record, "status": str(job.get_status(refresh=False).value)}), flush=True)
        return
    what = f"{batch.spec.name} split into {split} chunks + 1 combining job" if split > 1 else batch.spec.name
    err_console.print(f"Enqueued {len(jobs):,} × {what} on {batch.queue}; job ids:")
    sys.stdout.write("".join(f"{job.id}\n" for job in jobs[:show]))
    sys.stdout.flush()
    if show is not None and len(jobs) > show:
        err_console.print(f"… and {len(jobs) - show:,} more.")


def warn_if_unserved(connection, queue: str) -> None:
    if listening_workers(connection, queue) == 0:
        err_console.print(
            f"[yellow]warning:[/] no worker listens on {queue}; start one with: "
            f"python consumer_main.py --workers 4 --queue {queue}",
            highlight=False,
        )


def wall_time(rows: list[Outcome], enqueued_at: datetime) -> float:
    """From enqueueing to the last job's end, by the workers' own clocks."""
    ends = [_utc(row.ended_at) for row in rows if row.ended_at]
    return max((max(ends) - enqueued_at).total_seconds(), 0.0) if ends else 0.0


def _utc(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_one_job(connection, batch: Batch) -> float | None:
    """Run the whole range as one job on the same queue, for an honest speed-up figure."""
    err_console.print("Timing the same range as one job, for comparison ...")
    [job] = enqueue(connection, Batch(batch.spec, batch.params, batch.queue, 1, batch.timeout_s))  # its own batch
    watch(connection, [job.id], batch.queue)
    [row] = outcomes(connection, [job.id])
    return row.duration_s if row.ok else None


def fail_if_any(rows: list[Outcome]) -> None:
    """Raise JobsFailed naming the jobs that did not finish and why (exit 1)."""
    bad = [row for row in rows if not row.ok]
    if not bad:
        return
    named = "; ".join(f"{row.id} {row.status}: {(row.error or '').rstrip('.')}" for row in bad[:5])
    more = f"; and {len(bad) - 5:,} more" if len(bad) > 5 else ""
    raise JobsFailed(f"{len(bad):,} of {len(rows):,} jobs did not finish: {named}{more}.")


def entry() -> int:
    return run(main)


if __name__ == "__main__":
    raise SystemExit(entry())
