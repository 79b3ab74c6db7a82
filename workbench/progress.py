"""Progress reporting from inside a running task, read by the consoles and the dashboard."""

from __future__ import annotations

import time

import redis
from rq import get_current_job

from . import defaults

#: The job meta key that holds {"fraction": 0..1, "note": str}.
META_KEY = "progress"
_last_report: dict[str, float] = {}
#: After a report the broker did not take (an outage, a failover), the next ones wait this long: progress
#: is best effort, and the job must neither fail nor stall on it.
AWAY_PAUSE_S = 2.0
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
    global _away_until
    job = get_current_job()
    if job is None:
        return
    now = time.monotonic()
    final = fraction >= 1.0
    if not (force or final) and now - _last_report.get(job.id, 0.0) < defaults.PROGRESS_MIN_INTERVAL_S:
        return
    _last_report.clear()
    _last_report[job.id] = now
    job.meta[META_KEY] = {"fraction": round(min(max(fraction, 0.0), 1.0), 4), "note": note}
    if now < _away_until:
        return  # the broker was away a moment ago; the meta goes with a later report or the job's end
    try:
        job.connection.register_script(_SAVE_IF_EXISTS)(keys=[job.key], args=[job._serialize_meta()])
    except (redis.ConnectionError, redis.TimeoutError):
        _away_until = time.monotonic() + AWAY_PAUSE_S


def read(meta: dict | None) -> float | None:
    """The reported fraction in a job's meta, if any."""
    progress = (meta or {}).get(META_KEY)
    if isinstance(progress, dict) and isinstance(progress.get("fraction"), int | float):
        return float(progress["fraction"])
    return None
