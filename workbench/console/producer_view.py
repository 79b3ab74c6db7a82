"""What the producer shows: the catalog, a live progress bar while waiting, and the results."""

from __future__ import annotations

import json
from collections.abc import Mapping

from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import defaults
from ..catalog import TaskSpec
from ..producer import Outcome, Snapshot, follow
from .common import err_console, out_console


def print_catalog(catalog: Mapping[str, TaskSpec], *, to_stdout: bool = False) -> None:
    """The catalog, numbered so a menu can take either the number or the name."""
    table = Table(title="Task catalog")
    for column in ("#", "task", "description", "parameters", "timeout"):
        table.add_column(column, overflow="fold")
    for number, spec in enumerate(catalog.values(), start=1):
        params = "\n".join(p.describe() for p in spec.params) or "-"
        table.add_row(str(number), spec.name, escape(spec.description), escape(params), f"{spec.timeout_s:,} s")
    (out_console if to_stdout else err_console).print(table)


def describe(snap: Snapshot) -> str:
    """`done 3 · failed 1 · of 10 · running 2: 40% 75%` for the live bar."""
    running = " ".join(f"{fraction:.0%}" for fraction in snap.running[:6])
    more = " …" if len(snap.running) > 6 else ""
    tail = f" · running {len(snap.running)}: {running}{more}" if snap.running else ""
    return f"done {snap.finished:,} · failed {snap.failed:,} · of {snap.total:,}{tail}"


def watch(connection, ids: list[str], queue: str | None = None, *, quiet: bool = False) -> None:
    """Follow the jobs to the end, with a live progress bar unless quiet or nobody watches stderr.

    Given the jobs' queue, it gives up (WorkbenchError) when no worker serves it for long.
    """
    if quiet or not err_console.is_terminal:
        for _ in follow(connection, ids, queue):
            pass
        return
    columns = (BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("waiting", total=len(ids))
        for snap in follow(connection, ids, queue):
            bar.update(task, completed=snap.done + snap.running_progress, description=describe(snap))


def summarise(result: object, width: int = 60) -> str:
    """A result in one short line: `count=78498, limit=1000000` rather than raw JSON."""
    if result is None:
        return "-"
    if isinstance(result, dict):
        text = ", ".join(f"{key}={value}" for key, value in result.items())
    else:
        text = json.dumps(result, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_results(rows: list[Outcome], wall_s: float) -> None:
    """The results table and summary line, on stdout: they are what the command produces."""
    table = Table(title="Results")
    for column in ("id", "task", "status", "duration", "result", "error"):
        table.add_column(column, overflow="fold")
    for row in rows[: defaults.RESULTS_TABLE_ROWS]:
        duration = f"{row.duration_s:.3f} s" if row.duration_s is not None else "-"
        style = "" if row.ok else "red"
        cells = (row.id[:12], row.task, row.status, duration, summarise(row.result), row.error or "")
        table.add_row(*(escape(cell) for cell in cells), style=style)
    out_console.print(table)
    if len(rows) > defaults.RESULTS_TABLE_ROWS:
        out_console.print(f"… and {len(rows) - defaults.RESULTS_TABLE_ROWS:,} more (use --json for every job).")
    out_console.print(summary_line(rows, wall_s))


def summary_line(rows: list[Outcome], wall_s: float) -> str:
    """Wall time, summed job time, and their ratio: how many jobs ran at once, on average."""
    busy = sum(row.duration_s or 0.0 for row in rows)
    speedup = f"{busy / wall_s:.2f}×" if wall_s > 0 else "-"
    ok = sum(row.ok for row in rows)
    return (
        f"{ok:,} of {len(rows):,} finished · wall time {wall_s:.2f} s · "
        f"summed job time {busy:.2f} s · speed-up {speedup}"
    )


def print_fanout(combined: Outcome, wall_s: float, one_job_s: float | None) -> None:
    """The combined answer of a split, and its speed-up against one job."""
    if not combined.ok or not isinstance(combined.result, dict):
        out_console.print(f"[red]The split was not combined:[/] {escape(combined.error or '')}", highlight=False)
        return
    result = combined.result
    line = (
        f"primes in [{result['start']:,}, {result['limit']:,}): {result['count']:,} "
        f"from {result['chunks']} chunks · chunk time {result['chunk_time_s']:.2f} s in a span of "
        f"{result['span_s']:.2f} s (×{result['speedup']} in parallel)"
    )
    out_console.print(line, highlight=False)
    if one_job_s:
        out_console.print(
            f"one job took {one_job_s:.2f} s; the split took {wall_s:.2f} s end to end: "
            f"speed-up {one_job_s / wall_s:.2f}× against one job",
            highlight=False,
        )
