"""The kill_thread commands: list workers, stop workers (warm or by force), stop one job.

python kill_thread/list_workers.py [--json]
python kill_thread/kill_workers.py (--all | --queue Q | --name NAME) [--force] [--grace S]
python kill_thread/kill_job.py JOB_ID
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.table import Table

from .. import control, defaults, validators
from ..errors import EXIT_OK, WorkbenchError
from .common import ArgumentParser, add_broker_flag, open_broker, out_console, outside, run, say

#: Worker names and job ids are the handles people copy into the other commands: never cut them.
_UNCUT = {"overflow": "fold", "no_wrap": False}


def _heartbeat(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    age = max((datetime.now(UTC) - moment.replace(tzinfo=moment.tzinfo or UTC)).total_seconds(), 0)
    return f"{age:.0f} s ago"


# -- list_workers.py ----------------------------------------------------------------------
def list_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="list_workers.py", description="List every worker registered in the broker, on any machine."
    )
    add_broker_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per worker on stdout")
    return parser


def list_main(argv: list[str]) -> int:
    args = list_parser().parse_args(argv)
    broker = open_broker(args.redis_url)
    workers = control.list_workers(broker.connection)
    if args.json:
        for info in workers:
            out_console.out(json.dumps(info.as_dict()), highlight=False)
        return EXIT_OK
    if not workers:
        say(f"No workers are registered at {broker.masked_url}.")
        return EXIT_OK
    table = Table(title=outside(f"Workers at {broker.masked_url}"))
    table.add_column("name", **_UNCUT)
    for column in ("host", "pid", "queues", "state"):
        table.add_column(column)
    table.add_column("current job", **_UNCUT)
    for column in ("done", "failed"):
        table.add_column(column, justify="right")
    table.add_column("last heartbeat", no_wrap=True)
    for info in workers:
        cells = (
            info.name,
            info.hostname,
            str(info.pid or "?"),
            ", ".join(info.queues),
            f"{info.state} (stopping)" if info.stopping else info.state,
            info.current_job or "-",
            str(info.done),
            str(info.failed),
            _heartbeat(info.last_heartbeat),
        )
        table.add_row(*(outside(cell) for cell in cells))  # every cell is broker data: shown inertly
    out_console.print(table)
    return EXIT_OK


# -- kill_workers.py ----------------------------------------------------------------------
def kill_workers_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="kill_workers.py",
        description="Stop workers through the broker: warm by default (the running job finishes first).",
    )
    add_broker_flag(parser)
    selector = parser.add_mutually_exclusive_group(required=True)
    selector.add_argument("--all", action="store_true", help="every registered worker")
    selector.add_argument("--queue", metavar="Q", help="every worker listening on queue Q")
    selector.add_argument("--name", metavar="NAME", help="the worker called NAME (see list_workers.py)")
    parser.add_argument(
        "--force", action="store_true", help="stop the running job at once (failed, or re-queued if it has retries)"
    )
    parser.add_argument(
        "--grace", metavar="S", help=f"seconds to wait for the workers to leave (default {defaults.KILL_GRACE_S:g})"
    )
    return parser


def _stopped_line(target: control.Target, connection) -> str:
    info = target.info
    line = f"stopped {info.name} on {info.hostname} (pid {info.pid or '?'})"
    if target.stopped_job:
        line += f"; its job {target.stopped_job} {control.job_fate(connection, target.stopped_job, info.name)}"
    return line


def kill_workers_main(argv: list[str]) -> int:
    args = kill_workers_parser().parse_args(argv)
    queue = validators.text(args.queue, "--queue", 200) if args.queue is not None else None
    name = validators.text(args.name, "--name", 200) if args.name is not None else None
    grace = (
        validators.real_number(args.grace, "--grace", 0, defaults.MAX_KILL_GRACE_S)
        if args.grace is not None
        else defaults.KILL_GRACE_S
    )
    broker = open_broker(args.redis_url)
    connection = broker.connection
    workers = control.select_workers(connection, queue=queue, name=name)
    if not workers:
        say(f"No workers are registered at {broker.masked_url}; nothing to stop.")
        return EXIT_OK
    how = "by force: running jobs stop now" if args.force else "warm: each finishes its running job first"
    say(f"Stopping {len(workers)} worker(s), {how}; waiting up to {grace:g} s for them to leave.")
    outcome = control.stop_workers(
        connection,
        workers,
        force=args.force,
        grace_s=grace,
        on_gone=lambda target: say(_stopped_line(target, connection), console=out_console),
    )
    if outcome.left:
        reasons = ", ".join(target.why_not_gone(connection) for target in outcome.left)
        raise WorkbenchError(f"{len(outcome.left)} worker(s) did not stop within {grace:g} s: {reasons}.")
    say(f"All {len(outcome.gone)} worker(s) stopped.")
    return EXIT_OK


# -- kill_job.py --------------------------------------------------------------------------
def kill_job_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="kill_job.py", description="Stop one running job, on whichever worker runs it.")
    add_broker_flag(parser)
    parser.add_argument("job_id", metavar="JOB_ID", help="the job's id (see list_workers.py or the dashboard)")
    return parser


def kill_job_main(argv: list[str]) -> int:
    args = kill_job_parser().parse_args(argv)
    job_id = validators.job_id(args.job_id)
    broker = open_broker(args.redis_url)
    stop = control.stop_job(broker.connection, job_id)
    if stop.status == "started":
        raise WorkbenchError(
            f"job {job_id} was asked to stop on worker {stop.worker} but still runs after "
            f"{defaults.STOP_JOB_WAIT_S:g} s."
        )
    say(f"stopped job {job_id} on worker {stop.worker}; it is now {stop.status or 'gone'}", console=out_console)
    return EXIT_OK


def list_entry() -> int:
    return run(list_main)


def kill_workers_entry() -> int:
    return run(kill_workers_main)


def kill_job_entry() -> int:
    return run(kill_job_main)
