"""`python producer_main.py`: enqueue catalog tasks by flags or interactively, wait, come back later.

Top down, one way: this module parses the flags and picks a path; `producer_menu` is the
interactive path; `producer_flow` and `producer_schedules` do the work both paths share and print
it with `producer_view`; the core (`workbench.producer`, `workbench.schedules`) never prints.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .. import defaults, validators
from ..catalog_load import load_catalog
from ..errors import EXIT_OK, UsageError
from ..fanout import check_split, split_count
from ..producer import Batch, make_batch
from .common import ArgumentParser, add_broker_flag, open_broker, run
from .producer_flow import catalog, detached, finish, list_batches, parse_params, reattach, send
from .producer_menu import interactive
from .producer_schedules import (
    list_schedules,
    make_schedule,
    register,
    repeat_from_flags,
    unschedule,
    when_from_flags,
)
from .producer_view import print_catalog

__all__ = ["build_parser", "entry", "main"]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="producer_main.py",
        description="Enqueue catalog tasks onto a queue: now, later (--in/--at) or repeatedly (--every/--cron). "
        "Without --task it opens the menu.",
    )
    add_broker_flag(parser)
    what = parser.add_argument_group("what to enqueue")
    what.add_argument("--task", help="catalog task name (see --list-tasks); case does not matter")
    what.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="task parameter")
    what.add_argument("--count", help=f"copies to enqueue, {defaults.MIN_COUNT}-{defaults.MAX_COUNT:,}")
    what.add_argument("--queue", help=f"queue name (default {defaults.DEFAULT_QUEUE})")
    what.add_argument("--timeout", help="job timeout in seconds (default: the task's own)")
    what.add_argument("--retries", help=f"retries on failure, 0-{defaults.MAX_RETRIES}")
    what.add_argument("--retry-interval", metavar="S[,S...]", help="seconds to wait before each retry (e.g. 10,30,60)")
    what.add_argument("--at-front", action="store_true", help="put the jobs at the front of the queue")
    what.add_argument(
        "--split", help=f"count_primes: run the range as N parallel chunks and combine them (2-{defaults.MAX_SPLIT})"
    )
    when = parser.add_argument_group("when (default: now)")
    when.add_argument("--in", dest="in_", metavar="DURATION", help="enqueue after a delay: 90s, 10m, 2h, 1d")
    when.add_argument("--at", metavar="TIME", help="enqueue at a time: 2026-12-24T18:00 (local time)")
    when.add_argument("--every", metavar="DURATION", help="enqueue repeatedly: every 30s, 10m, 1h ...")
    when.add_argument("--cron", metavar="'M H D M W'", help="enqueue repeatedly on a cron line: '*/5 * * * *'")
    when.add_argument("--name", help="the periodic schedule's name (default: the task's name)")
    out = parser.add_argument_group("waiting and output")
    out.add_argument("--wait", action="store_true", help="wait for the jobs and show their results")
    out.add_argument("--baseline", action="store_true", help="with --split --wait: also time the range as one job")
    out.add_argument("--json", action="store_true", help="JSON lines on stdout: the batch first, then one per job")
    out.add_argument("--full-ids", action="store_true", help="show whole job ids in the results table")
    look = parser.add_argument_group("looking around")
    look.add_argument("--list-tasks", action="store_true", help="list the task catalog and exit")
    look.add_argument("--batch", metavar="ID", help="re-attach to a batch: where it stands, then its results")
    look.add_argument(
        "--requeue-failed",
        action="store_true",
        help="with --batch: put its failed and stopped jobs back on their queue; resumable tasks carry on from "
        "their last checkpoint",
    )
    look.add_argument(
        "--restart", action="store_true", help="with --requeue-failed: restart from zero (discard the checkpoints)"
    )
    look.add_argument("--batches", action="store_true", help="list recent batches (when, task, done/failed)")
    look.add_argument("--schedules", action="store_true", help="list the periodic schedules")
    look.add_argument("--unschedule", metavar="NAME", help="remove a periodic schedule")
    return parser


def batch_from_flags(args: argparse.Namespace) -> tuple[Batch, int]:
    """Validate every flag into a Batch and a split count, before anything touches the broker."""
    from ..catalog import task_named

    spec = task_named(catalog(), args.task)
    batch = make_batch(
        spec,
        parse_params(args.param),
        queue=args.queue,
        count=args.count,
        timeout=args.timeout,
        retries=args.retries,
        retry_interval=args.retry_interval,
        at_front=args.at_front,
    )
    split = split_count(args.split) if args.split is not None else 1
    check_split(batch, split)
    if args.baseline and split == 1:
        raise UsageError("--baseline compares a split with one job, so it needs --split N.")
    return batch, split


def _looking(args: argparse.Namespace) -> str | None:
    """The one "looking around" action asked for, refusing two at once."""
    chosen = [
        flag
        for flag, given in (
            ("--list-tasks", args.list_tasks),
            ("--batch", args.batch is not None),
            ("--batches", args.batches),
            ("--schedules", args.schedules),
            ("--unschedule", args.unschedule is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; give one.")
    if chosen and args.task is not None:
        raise UsageError(f"{chosen[0]} does not enqueue anything, so it takes no --task.")
    if args.requeue_failed and args.batch is None:
        raise UsageError("--requeue-failed puts a batch's failed jobs back, so it needs --batch ID.")
    if args.restart and not args.requeue_failed:
        raise UsageError("--restart restarts re-queued jobs from zero, so it needs --requeue-failed.")
    return chosen[0] if chosen else None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    looking = _looking(args)
    load_catalog()  # WORKBENCH_TASKS: a module that fails to import stops the producer here
    if looking == "--list-tasks":
        print_catalog(catalog(), to_stdout=True)
        return EXIT_OK
    if looking is not None:
        batch_id = validators.batch_id(args.batch) if args.batch is not None else None
        broker = open_broker(args.redis_url, announce=None)
        if batch_id is not None:
            again = "restart" if args.restart else "resume" if args.requeue_failed else None
            reattach(
                broker.connection, batch_id, wait=args.wait, as_json=args.json, full_ids=args.full_ids, again=again
            )
        elif looking == "--batches":
            list_batches(broker.connection, as_json=args.json)
        elif looking == "--schedules":
            list_schedules(broker.connection, as_json=args.json)
        else:
            unschedule(broker.connection, args.unschedule)
        return EXIT_OK
    if args.task is None:
        if not sys.stdin.isatty():
            raise UsageError("missing --task; stdin is not a terminal.")
        if args.json:
            raise UsageError("--json is for scripts, so it needs --task.")
        # A person at a terminal: Ctrl-C detaches from a wait and quits at a question, even when the
        # program that started us ignores SIGINT (a shell's background job, some test runners).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return interactive(args)
    return scripted(args)


def scripted(args: argparse.Namespace) -> int:
    """Everything from flags: validated first, then one batch (now or later) or one schedule."""
    batch, split = batch_from_flags(args)
    at = when_from_flags(args.in_, args.at)
    every, cron = repeat_from_flags(args.every, args.cron)
    if (every or cron) and at is not None:
        raise UsageError("--in/--at enqueue once, later; --every/--cron repeatedly: give one of them.")
    if (every or cron or at) and split > 1:
        raise UsageError("a --split runs now; it cannot be delayed or repeated.")
    if (every or cron) and args.wait:
        raise UsageError("a periodic schedule never ends, so --wait does not go with --every or --cron.")
    if args.name is not None and not (every or cron):
        raise UsageError("--name names a periodic schedule, so it needs --every or --cron.")
    schedule = make_schedule(batch, args.name, every, cron) if every or cron else None
    broker = open_broker(args.redis_url, announce=True if args.wait else None)
    if schedule is not None:
        register(broker.connection, schedule, as_json=args.json)
        return EXIT_OK
    sent = send(broker.connection, batch, split, as_json=args.json, at=at, wait=args.wait)
    if args.wait:
        try:
            finish(broker.connection, sent, as_json=args.json, baseline=args.baseline, full_ids=args.full_ids)
        except KeyboardInterrupt:
            detached(batch.batch_id)
            raise
    return EXIT_OK


def entry() -> int:
    return run(main)


if __name__ == "__main__":
    raise SystemExit(entry())
