"""The `sleep` task: waits, reporting progress; the stand-in for any long I/O-bound job.

Resumable: the checkpoint is the time slept so far, so a re-run sleeps only what is left.
"""

from __future__ import annotations

import time

from workbench import checkpoint
from workbench.catalog import FLOAT, Param, task
from workbench.progress import report


@task(
    params=[Param("seconds", FLOAT, 1.0, "how long to sleep", 0, 3600)],
    timeout=3700,
    io_bound=True,
    shown=("slept_s",),
    resumable=True,
)
def sleep(seconds: float = 1.0) -> dict:
    """Sleep for a while, reporting progress (stands in for slow I/O).

    Progress is reported about four times a second.
    """
    saved = checkpoint.load()
    slept = saved.get("slept_s") if isinstance(saved, dict) else None
    # A resumed run counts the time slept before the interruption as slept.
    started = time.monotonic() - (slept if isinstance(slept, int | float) and 0 < slept <= seconds else 0.0)
    deadline = started + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.25))
        elapsed = time.monotonic() - started
        report(elapsed / seconds if seconds else 1.0, f"{max(left, 0):.1f} s left")
        checkpoint.save({"slept_s": round(elapsed, 3)}, fraction=min(elapsed / seconds, 1.0) if seconds else 1.0)
    return {"slept_s": round(time.monotonic() - started, 3)}
