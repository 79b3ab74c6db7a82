"""The `sleep` task: waits, reporting progress; the stand-in for any long I/O-bound job."""

from __future__ import annotations

import time

from workbench.catalog import FLOAT, Param, task
from workbench.progress import report


@task(
    params=[Param("seconds", FLOAT, 1.0, "how long to sleep", 0, 3600)],
    timeout=3700,
    io_bound=True,
    shown=("slept_s",),
)
def sleep(seconds: float = 1.0) -> dict:
    """Sleep for a while, reporting progress (stands in for slow I/O).

    Progress is reported about four times a second.
    """
    started = time.monotonic()
    deadline = started + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.25))
        report((time.monotonic() - started) / seconds if seconds else 1.0, f"{max(left, 0):.1f} s left")
    return {"slept_s": round(time.monotonic() - started, 3)}
