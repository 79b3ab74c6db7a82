"""A test-only catalog task that leaves marker files, so tests can count runs and see overlaps.

It is registered only in processes started through `tests/marker_consumer.py`: production
catalogs, and the test process's own, never contain it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rq import get_current_job

import task_def
from workbench.catalog import FLOAT, STR, Param, TaskSpec


def mark(folder: str, seconds: float = 0.0) -> dict:
    """Write `<job>.<pid>.<t0>.start`, sleep, then the matching `.end` file (`.stopped` if the sleep was stopped)."""
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


SPEC = TaskSpec(
    name="mark",
    func=mark,
    description="Test only: leave marker files around a sleep.",
    params=(
        Param("folder", STR, "", "marker folder", maximum=4096, required=True),
        Param("seconds", FLOAT, 0.0, "how long to sleep", 0, 3600),
    ),  # fmt: skip
    timeout_s=600,
)


def stubborn(folder: str, seconds: float = 0.0) -> dict:
    """Like `mark`, but shrugs off every attempt to stop it (as a job stuck in C code would)."""
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


STUBBORN = TaskSpec(
    name="stubborn",
    func=stubborn,
    description="Test only: a job that ignores stops.",
    params=SPEC.params,
    timeout_s=600,
)


def register() -> None:
    """Add `mark` and `stubborn` to this process's catalog; only tests/marker_consumer.py calls it, before forking."""
    for spec in (SPEC, STUBBORN):
        task_def.CATALOG[spec.name] = spec
        task_def.ALLOWED_FUNCS[spec.func_path] = spec


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
