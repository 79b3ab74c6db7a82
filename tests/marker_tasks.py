"""A test-only catalog task that leaves marker files, so tests can count runs and see overlaps.

It joins the catalog only where WORKBENCH_TASKS names this module, as `tests/marker_consumer.py`
does for its workers: production catalogs, and the test process's own, never contain it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rq import get_current_job

from workbench.catalog import FLOAT, STR, Param, task

MODULE = __name__


@task(
    params=[
        Param("folder", STR, "", "marker folder", maximum=4096, required=True),
        Param("seconds", FLOAT, 0.0, "how long to sleep", 0, 3600),
    ],
    timeout=600,
)
def mark(folder: str, seconds: float = 0.0) -> dict:
    """Test only: leave marker files around a sleep.

    Writes `<job>.<pid>.<t0>.start`, sleeps, then the matching `.end` file (`.stopped` if the sleep was stopped).
    """
    job = get_current_job()
    stem = f"{job.id if job else 'none'}.{os.getpid()}.{time.time_ns()}"
    Path(folder, f"{stem}.start").touch()
    try:
        time.sleep(seconds)
    except BaseException:
        Path(folder, f"{stem}.stopped").touch()
        raise
    Path(folder, f"{stem}.end").touch()
    return {"pid": os.getpid()}


@task(
    params=[
        Param("folder", STR, "", "marker folder", maximum=4096, required=True),
        Param("seconds", FLOAT, 0.0, "how long to sleep", 0, 3600),
    ],
    timeout=600,
)
def stubborn(folder: str, seconds: float = 0.0) -> dict:
    """Test only: a job that ignores stops.

    Like `mark`, but shrugs off every attempt to stop it (as a job stuck in C code would).
    """
    job = get_current_job()
    stem = f"{job.id if job else 'none'}.{os.getpid()}.{time.time_ns()}"
    Path(folder, f"{stem}.start").touch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
            Path(folder, f"{stem}.alive").touch()  # its mtime: the last moment this run still ran
        except BaseException:  # noqa: BLE001 - the point of this task
            continue
    Path(folder, f"{stem}.end").touch()
    return {"pid": os.getpid()}


#: The dotted path a job names to run `mark`.
MARK_PATH = f"{MODULE}.mark"


def runs(folder: Path) -> dict[str, list[tuple[int, int, int | None]]]:
    """Per job id: its runs as (pid, start ns, end ns or None when the run was killed)."""
    found: dict[str, list[tuple[int, int, int | None]]] = {}
    for start in folder.glob("*.start"):
        job_id, pid, t0 = start.name[: -len(".start")].rsplit(".", 2)
        end = start.with_suffix(".end")
        end_ns = end.stat().st_mtime_ns if end.exists() else None
        found.setdefault(job_id, []).append((int(pid), int(t0), end_ns))
    return {job_id: sorted(items, key=lambda r: r[1]) for job_id, items in found.items()}


def overlaps(job_runs: list[tuple[int, int, int | None]], killed_at: dict[int, int]) -> bool:
    """Whether any two runs of one job overlapped; a killed run ends when its pid was killed."""
    for (pid, _, end), (_, next_start, _) in zip(job_runs, job_runs[1:], strict=False):
        finished = end if end is not None else killed_at.get(pid)
        if finished is None or finished > next_start:
            return True
    return False
