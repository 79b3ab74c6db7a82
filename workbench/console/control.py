"""The kill_thread commands: list workers, stop workers (warm or by force), stop one job.

python kill_thread/list_workers.py [--json]
python kill_thread/kill_workers.py (--all | --queue Q | --name NAME | --host HOST) [--force] [--grace S]
python kill_thread/kill_job.py JOB_ID
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from redis import Redis
from rich.console import OverflowMethod
from rich.table import Table
from rich.text import Text

from .. import control, defaults, validators
from ..errors import EXIT_OK, WorkbenchError
from ..text import printable
from .common import ArgumentParser, add_broker_flag, open_broker, out_console, outside, run, say


def _alive(info: control.WorkerInfo) -> str:
    """Workbench workers by their liveness key; plain RQ workers by RQ's heartbeat."""
    if info.workbench:
        if not info.alive:
            return "no (liveness key lapsed)"
        return f"yes ({info.beat_age:.0f} s ago)" if info.beat_age is not None else "yes"
    return f"{'yes' if info.alive else 'no'} (rq heartbeat {_heartbeat(info.last_heartbeat)})"


def _heartbeat(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    age = max((datetime.now(UTC) - moment.replace(tzinfo=moment.tzinfo or UTC)).total_seconds(), 0)
    return f"{age:.0f} s ago"


# -- list_workers.py ----------------------------------------------------------------------
HEADERS = ("name", "host", "address", "pid", "queues", "state", "alive", "current job", "done", "failed")
_RIGHT = {"pid", "done", "failed"}


def list_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="list_workers.py",
        description="List every worker registered in the broker, on any machine, with its host name and the "
        "address the broker sees it from.",
    )
    add_broker_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per worker on stdout")
    return parser


def _row(info: control.WorkerInfo) -> tuple[str, ...]:
    return tuple(
        printable(cell)
        for cell in (
            info.name,
            info.hostname,
            info.address,
            str(info.pid or "?"),
            ",".join(info.queues),
            f"{info.state} (stopping)" if info.stopping else info.state,
            "?" if info.unreadable else _alive(info),
            ", ".join(info.current_jobs) or info.current_job or "-",
            str(info.done),
            str(info.failed),
        )
    )


def plain_table(headers: tuple[str, ...], rows: list[tuple[str, ...]], right: set[str] = _RIGHT) -> str:
    """Aligned plain text for pipes: one line per row, columns padded with spaces, never cut."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        padded = (
            cell.rjust(width) if header in right else cell.ljust(width)
            for header, cell, width in zip(headers, cells, widths, strict=True)
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


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
    rows = [_row(info) for info in workers]
    for info in workers:
        if info.unreadable:
            say(("warning: ", "yellow"), f"worker {info.name}: {info.unreadable}.")
    if not out_console.is_terminal:
        out_console.out(plain_table(HEADERS, rows), highlight=False)
        return EXIT_OK
    table = Table(title=outside(f"Workers at {broker.masked_url}"))
    for header in HEADERS:
        # Worker names and job ids are the handles people copy into the other commands: never cut them.
        overflow: OverflowMethod = "fold" if header in ("name", "current job", "address") else "ellipsis"
        table.add_column(header, justify="right" if header in _RIGHT else "left", overflow=overflow)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
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
    selector.add_argument(
        "--host", metavar="HOST", help="every worker on HOST: its host name or its address (see list_workers.py)"
    )
    parser.add_argument(
        "--force", action="store_true", help="stop the running job at once (failed, or re-queued if it has retries)"
    )
    parser.add_argument(
        "--grace", metavar="S", help=f"seconds to wait for the workers to leave (default {defaults.KILL_GRACE_S:g})"
    )
    return parser


def _stopped_line(target: control.Target, connection: Redis) -> str:
    info = target.info
    line = f"stopped {info.name} on {info.hostname} at {info.address} (pid {info.pid or '?'})"
    if target.stopped_job:
        line += f"; its job {target.stopped_job} {control.job_fate(connection, target.stopped_job, info.name)}"
    return line


def kill_workers_main(argv: list[str]) -> int:
    args = kill_workers_parser().parse_args(argv)
    queue = validators.text(args.queue, "--queue", 200) if args.queue is not None else None
    name = validators.text(args.name, "--name", 200) if args.name is not None else None
    host = validators.text(args.host, "--host", 255) if args.host is not None else None
    grace = (
        validators.real_number(args.grace, "--grace", 0, defaults.MAX_KILL_GRACE_S)
        if args.grace is not None
        else defaults.KILL_GRACE_S
    )
    broker = open_broker(args.redis_url)
    connection = broker.connection
    workers = control.select_workers(connection, queue=queue, name=name, host=host)
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
