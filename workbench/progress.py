"""Progress reporting from inside a running task, read by the consoles and the dashboard.

A job that resumed from a checkpoint (`workbench.checkpoint`) also carries, in its meta under
`resumed`, how many times it did and from what fraction it last carried on; its progress starts
there, so every view continues from where the job was instead of from zero.
"""

from __future__ import annotations

import time

import redis
from rq import get_current_job
from rq.job import Job

from . import defaults

#: The job meta key that holds {"fraction": 0..1, "note": str}.
META_KEY = "progress"
#: The job meta key that holds {"times": n, "from": 0..1 or None}: runs that carried on from a checkpoint.
RESUMED_KEY = "resumed"
_last_report: dict[str, float] = {}
#: Jobs whose last report time is kept: more than a worker runs at once (--threads), so none is forgotten early.
_REPORTS_KEPT = 64
_away_until = 0.0

#: Write the meta only while the job exists: a plain HSET after a broker restart without persistence
#: would recreate a job hash holding nothing but `meta`, which RQ then cannot load.
_SAVE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'meta', ARGV[1]) end
return -1
"""


def report(fraction: float, note: str = "", *, force: bool = False) -> None:
    """Record how far the current job is; a no-op outside a worker.

    Throttled to limit writes, except the final report (fraction 1) which always lands, so a
    finished job never shows a stale 97 %.
    """
    job = get_current_job()
    if job is None:
        return
    now = time.monotonic()
    final = fraction >= 1.0
    if not (force or final) and now - _last_report.get(job.id, 0.0) < defaults.PROGRESS_MIN_INTERVAL_S:
        return
    if len(_last_report) >= _REPORTS_KEPT:
        _last_report.clear()  # (jobs of a worker that ran many; those running now report again at once)
    _last_report[job.id] = now
    job.meta[META_KEY] = {"fraction": round(min(max(fraction, 0.0), 1.0), 4), "note": note}
    _save_meta(job)


def _save_meta(job: Job) -> None:
    """Best effort: a report the broker does not take (an outage, a failover) pauses the next ones."""
    global _away_until
    if time.monotonic() < _away_until:
        return  # the broker was away a moment ago; the meta goes with a later report or the job's end
    try:
        job.connection.register_script(_SAVE_IF_EXISTS)(keys=[job.key], args=[job._serialize_meta()])
    except (redis.ConnectionError, redis.TimeoutError):
        _away_until = time.monotonic() + defaults.PROGRESS_AWAY_PAUSE_S


def mark_resumed(job: Job, fraction: float | None) -> None:
    """A run of `job` carries on from a checkpoint taken at `fraction`: count it, and start its progress there."""
    times = (resumed(job.meta) or {}).get("times", 0) + 1
    shown = round(min(max(fraction, 0.0), 1.0), 4) if fraction is not None else None
    job.meta[RESUMED_KEY] = {"times": times, "from": shown}
    if shown is not None:
        job.meta[META_KEY] = {"fraction": shown, "note": f"resumed from {shown:.0%}"}
    _save_meta(job)


def forget_resumes(meta: dict) -> None:
    """Restart from zero: the job's progress and resume record go with its checkpoint."""
    meta.pop(META_KEY, None)
    meta.pop(RESUMED_KEY, None)


def resumed(meta: dict | None) -> dict | None:
    """{"times": n, "from": fraction or None} when the job carried on from a checkpoint, else None."""
    value = (meta or {}).get(RESUMED_KEY)
    if not isinstance(value, dict) or not isinstance(value.get("times"), int) or value["times"] < 1:
        return None
    start = value.get("from")
    return {"times": value["times"], "from": float(start) if isinstance(start, int | float) else None}


def resume_words(meta: dict | None) -> str:
    """`resumed from 67%`, `resumed 2×, last from 67%`, or "" for a job that never resumed."""
    return resume_phrase(resumed(meta))


def resume_phrase(value: dict | None) -> str:
    """The words for a `resumed` record (see `resumed`), or ""."""
    if value is None:
        return ""
    start = f"{value['from']:.0%}" if value["from"] is not None else "a checkpoint"
    return f"resumed from {start}" if value["times"] == 1 else f"resumed {value['times']}×, last from {start}"


def read(meta: dict | None) -> float | None:
    """The reported fraction in a job's meta, if any."""
    progress = (meta or {}).get(META_KEY)
    if isinstance(progress, dict) and isinstance(progress.get("fraction"), int | float):
        return float(progress["fraction"])
    return None
