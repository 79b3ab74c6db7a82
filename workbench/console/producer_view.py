"""What the producer shows: the catalog, a live progress bar while waiting, results, batches, schedules.

Everything read from the broker (results, errors, page titles, queue names) is shown through
`outside()`: control characters made visible, markup shown literally.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime

from redis import Redis
from rich import box
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import defaults
from ..catalog import TaskSpec
from ..durability import Confirmation
from ..errors import NotConfirmed
from ..producer import Outcome, Snapshot, follow
from ..progress import resume_phrase
from .common import err_console, out_console, outside, say

#: Job states that are not over yet.
PENDING = ("queued", "started", "deferred", "scheduled")


def print_catalog(catalog: Mapping[str, TaskSpec], *, to_stdout: bool = False) -> None:
    """The catalog, numbered so a menu can take either the number or the name."""
    table = Table(title="Task catalog")
    for column in ("#", "task", "description", "parameters", "timeout"):
        table.add_column(column, overflow="fold")
    for number, spec in enumerate(catalog.values(), start=1):
        params = "\n".join(p.describe() for p in spec.params) or "-"
        table.add_row(
            str(number),
            outside(spec.name),
            outside(spec.description),
            outside(params, keep_newlines=True),
            f"{spec.timeout_s:,} s",
        )
    (out_console if to_stdout else err_console).print(table)


def describe(snap: Snapshot) -> str:
    """`done 3 · failed 1 · of 10 · running 2: 40% 75% (resumed from 67%)` for the live bar."""
    resumes = snap.resumes or (None,) * len(snap.running)
    running = " ".join(
        f"{fraction:.0%}" + (f" ({resume_phrase(resumed)})" if resumed else "")
        for fraction, resumed in zip(snap.running[:6], resumes, strict=False)
    )
    more = " …" if len(snap.running) > 6 else ""
    tail = f" · running {len(snap.running)}: {running}{more}" if snap.running else ""
    return f"done {snap.finished:,} · failed {snap.failed:,} · of {snap.total:,}{tail}"


def watch(connection: Redis, ids: list[str], queue: str | None = None, *, quiet: bool = False) -> None:
    """Follow the jobs to the end, with a live progress bar unless quiet or nobody watches stderr.

    Given the jobs' queue, it gives up (WorkbenchError) when no worker serves it for long.
    """
    if quiet or not err_console.is_terminal:
        for _ in follow(connection, ids, queue):
            pass
        return
    columns = (BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TextColumn("{task.description}", markup=False))
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("waiting", total=len(ids))
        for snap in follow(connection, ids, queue):
            bar.update(task, completed=snap.done + snap.running_progress, description=describe(snap))


def summarise(result: object, fields: tuple[str, ...] = (), width: int = 60) -> str:
    """A result in one short line: the task's most useful fields (`title=…, words=12`), not raw JSON."""
    if result is None:
        return "-"
    if isinstance(result, dict):
        chosen = [key for key in fields if key in result] or list(result)
        text = ", ".join(f"{key}={_value(result[key])}" for key in chosen)
    else:
        text = json.dumps(result, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def print_results(
    rows: list[Outcome], wall_s: float, catalog: Mapping[str, TaskSpec] | None = None, *, full_ids: bool = False
) -> None:
    """The results table and summary line, on stdout: they are what the command produces.

    An expected failure (stopped, refused, timed out) is its one sentence in the table; an
    unexpected one also gets its traceback below the table.
    """
    catalog = catalog or {}
    table = Table(title="Results")
    table.add_column("id", overflow="fold", no_wrap=full_ids)
    for column in ("task", "status", "duration", "result", "error"):
        table.add_column(column, overflow="fold")
    for row in rows[: defaults.RESULTS_TABLE_ROWS]:
        duration = f"{row.duration_s:.3f} s" if row.duration_s is not None else "-"
        spec = catalog.get(row.task)
        result = summarise(row.result, spec.shown if spec else ())
        status = f"{row.status} ({resume_phrase(row.resumed)})" if row.resumed else row.status
        job_id = row.id if full_ids else row.id[: defaults.SHORT_ID_CHARS]
        cells = (job_id, row.task, status, duration, result, row.error or "")
        table.add_row(*(outside(cell) for cell in cells), style="" if row.ok or row.error is None else "red")
    out_console.print(table)
    if len(rows) > defaults.RESULTS_TABLE_ROWS:
        out_console.print(f"… and {len(rows) - defaults.RESULTS_TABLE_ROWS:,} more (use --json for every job).")
    for row in [row for row in rows if row.traceback][:3]:
        say(f"job {row.id} ({row.task}) raised an unexpected error:", console=out_console, style="red")
        out_console.print(outside(row.traceback, keep_newlines=True))
    out_console.print(summary_line(rows, wall_s))


def cores() -> int:
    """The cores this machine has (the workers' machine when they run here, as in the demo)."""
    return os.cpu_count() or 1


def summary_line(rows: list[Outcome], wall_s: float) -> str:
    """Wall time, summed job time, and their ratio named for what it is: jobs running at once, on average.

    The ratio is not a speed-up: jobs competing for the cores each take longer, which inflates it.
    A speed-up is only printed against a measured one-job baseline (`print_fanout`).
    """
    ok = sum(row.ok for row in rows)
    pending = sum(row.status in PENDING for row in rows)
    if pending:
        return f"{ok:,} of {len(rows):,} finished so far; {pending:,} still to run (add --wait to follow them)"
    busy = sum(row.duration_s or 0.0 for row in rows)
    at_once = f"{busy / wall_s:.2f}" if wall_s > 0 else "-"
    return (
        f"{ok:,} of {len(rows):,} finished · wall time {wall_s:.2f} s · summed job time {busy:.2f} s · "
        f"{at_once} jobs ran at once on average · {cores()} cores"
    )


def print_fanout(combined: Outcome, wall_s: float, one_job_s: float | None) -> None:
    """The combined answer of a split, and its speed-up against one measured job (when measured)."""
    if not combined.ok or not isinstance(combined.result, dict):
        say("The split was not combined: ", combined.error or "", console=out_console, style="red")
        return
    result = combined.result
    try:
        at_once = result["chunk_time_s"] / result["span_s"] if result["span_s"] else 0.0
        line = (
            f"primes in [{result['start']:,}, {result['limit']:,}): {result['count']:,} "
            f"from {result['chunks']} chunks · chunk time {result['chunk_time_s']:.2f} s in a span of "
            f"{result['span_s']:.2f} s ({at_once:.2f} chunks ran at once on average)"
        )
    except (KeyError, TypeError, ValueError):
        line = f"combined: {summarise(result)}"
    say(line, console=out_console)
    if one_job_s:
        say(
            f"one job took {one_job_s:.2f} s; the split took {wall_s:.2f} s end to end: "
            f"speed-up {one_job_s / wall_s:.2f}× against one job, on {cores()} cores",
            console=out_console,
        )


def local_time(stamp: str | None, *, short: bool = False) -> str:
    """An ISO UTC stamp as local `2026-12-24 18:00:05` (`12-24 18:00:05` when short), or `-`."""
    if not stamp:
        return "-"
    try:
        return f"{datetime.fromisoformat(stamp).astimezone():{'%m-%d %H:%M:%S' if short else '%Y-%m-%d %H:%M:%S'}}"
    except ValueError:
        return outside(stamp).plain


def batches_table(rows: list[dict]) -> Table:
    """`--batches`: when, id, task, queue, jobs, done, failed, still to run."""
    table = Table(title="Recent batches (newest first)", box=box.SIMPLE_HEAD)
    table.add_column("when", no_wrap=True)
    table.add_column("batch", no_wrap=True)
    for column in ("task", "queue"):
        table.add_column(column, overflow="fold", min_width=9)
    for column in ("jobs", "done", "failed", "to run"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        when = local_time(row["created_at"], short=True)
        if row.get("scheduled_for"):
            when += f"\nfor {local_time(row['scheduled_for'], short=True)}"
        split = f" ÷{row['split']}" if row.get("split", 1) > 1 else ""
        task = outside(row["task"] + split)
        if row.get("unreadable"):
            task = outside(f"unreadable: {row['unreadable']}", "yellow")
        table.add_row(
            when,
            outside(row["id"]),
            task,
            outside(row["queue"]),
            f"{row['count']:,}",
            f"{row['done']:,}",
            f"{row['failed']:,}",
            f"{row['waiting']:,}",
        )
    return table


def schedules_table(rows: list[dict]) -> Table:
    """`--schedules`: name, task, params, queue, when it repeats, next and last run."""
    table = Table(title="Schedules", box=box.SIMPLE_HEAD)
    for column in ("name", "task", "params", "queue", "repeats", "next run", "last run", "last batch"):
        table.add_column(column, overflow="fold")
    for row in rows:
        params = ", ".join(f"{key}={_value(value)}" for key, value in row["params"].items()) or "-"
        repeats = f"every {row['every']}" if row.get("every") else f"cron {row['cron']}"
        table.add_row(
            outside(row["name"]),
            outside(row["task"]),
            outside(params),
            outside(row["queue"]),
            outside(repeats),
            Text(row["next_run_shown"]),
            local_time(row.get("last_fired")),
            outside(row.get("last_batch") or "-"),
        )
    return table


#: Warnings about a broker's weaker guarantee already given by this process (one line, once).
_WARNED: set[str] = set()


def check_durable(confirmation: Confirmation | None, what: str, job_ids: list[str] | None = None) -> None:
    """Say once when the broker can only give a weaker guarantee; raise NotConfirmed when it did not confirm."""
    if confirmation is None:
        return
    if confirmation.warning and confirmation.warning not in _WARNED:
        _WARNED.add(confirmation.warning)
        say(("warning: ", "yellow"), confirmation.warning, ".")
    if confirmation.durable:
        return
    ids = ""
    if job_ids:
        shown = ", ".join(job_ids[:defaults.SHOWN_IDS])
        more = f" and {len(job_ids) - defaults.SHOWN_IDS:,} more" if len(job_ids) > defaults.SHOWN_IDS else ""
        ids = f"; job ids: {shown}{more}"
    raise NotConfirmed(
        f"{what}: queued but not confirmed durable: {confirmation.problem}, so it may be lost if the broker "
        f"fails now{ids}."
    )
