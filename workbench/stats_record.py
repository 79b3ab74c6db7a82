"""Writing the statistics of `workbench.stats`: one job's end, inside the transaction that finishes it.

Two ways to the same keys: as a script call on a MULTI/EXEC pipeline (`RECORD_SCRIPT`, RQ's own
finishing paths), or as plain commands on a `workbench.guarded.GuardedPipeline` (the worker's lean
path, which is itself one script). Either way each write is a pcall: a key someone set to another
type costs that one figure, never the transaction that records the job's end.

A key's TTL is set when the key is created (the HINCRBY or ZADD that made it returned 1), not on
every write: the keys are per minute or per hour, so a TTL set once is the TTL every later writer
would set; this keeps the cost of a job's statistics at one command per figure. Likewise the task
set is added to when a task's totals get a new field, and the per-minute maximum is only sent when
it can change what this process wrote before (ZADD GT would ignore the rest).
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from . import defaults
from .guarded import GuardedPipeline
from .stats import (
    ERROR_PREFIX,
    FAILED,
    FINISHED,
    OTHER_TASK,
    STOPPED,
    TASKS_KEY,
    bucket_of,
    hour_hist_key,
    max_key,
    minute_hist_key,
    minute_of,
    queue_key,
    task_name,
    total_key,
)

#: KEYS: queue minute, task set, task totals, minute histogram, hour histogram, max per minute, error line.
#: ARGV: outcome, queue, task, minute TTL, hour TTL, bucket field ('' if no duration), duration,
#:       minute, error action (set|del|''), error text, error TTL.
RECORD_SCRIPT = """
local p = redis.pcall
if p('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then p('EXPIRE', KEYS[1], ARGV[4]) end
if p('HINCRBY', KEYS[3], ARGV[1] .. ':' .. ARGV[2], 1) == 1 then p('SADD', KEYS[2], ARGV[3]) end
if ARGV[6] ~= '' then
  if p('HINCRBY', KEYS[4], ARGV[6], 1) == 1 then p('EXPIRE', KEYS[4], ARGV[4]) end
  if p('HINCRBY', KEYS[5], ARGV[6], 1) == 1 then p('EXPIRE', KEYS[5], ARGV[5]) end
  if p('ZADD', KEYS[6], 'GT', ARGV[7], ARGV[8]) == 1 then p('EXPIRE', KEYS[6], ARGV[5]) end
  p('HINCRBY', KEYS[3], ARGV[6], 1)
  p('HINCRBYFLOAT', KEYS[3], 'sum', ARGV[7])
end
if ARGV[9] == 'set' then
  p('SET', KEYS[7], ARGV[10], 'EX', ARGV[11])
elseif ARGV[9] == 'del' then
  p('DEL', KEYS[7])
end
return 1
"""

#: The longest duration this process sent per (task, minute): a shorter one would not change the maximum.
_sent_max: dict[tuple[str, int], float] = {}


def record_end(
    pipe: Pipeline | Redis,
    queue: str,
    task: str,
    outcome: str,
    duration_s: float | None,
    now: float | None = None,
    job_id: str = "",
    error: tuple[str, str, int] = ("", "", 0),
) -> None:
    """Queue on `pipe` one job's end: its queue's minute, its task's durations, its error line.

    `error` is (set|del|'', text, TTL) for the job's `workbench:error:<id>` line.
    """
    moment = time.time() if now is None else now
    minute = minute_of(moment)
    hour = minute // 60
    bucket = f"b{bucket_of(duration_s)}" if duration_s is not None and duration_s >= 0 else ""
    if isinstance(pipe, GuardedPipeline):
        _record_ops(pipe, queue, task, outcome, duration_s, minute, bucket, job_id, error)
        return
    keys = [
        queue_key(queue, minute),
        TASKS_KEY,
        total_key(task),
        minute_hist_key(task, minute),
        hour_hist_key(task, hour),
        max_key(task, hour),
        ERROR_PREFIX + job_id,
    ]
    args: list[str | int] = [
        outcome,
        queue,
        task,
        defaults.STATS_MINUTE_TTL_S,
        defaults.STATS_HOUR_TTL_S,
        bucket,
        repr(duration_s) if bucket else "0",
        minute,
        *error,
    ]
    pipe.eval(RECORD_SCRIPT, len(keys), *keys, *args)


def _record_ops(
    pipe: GuardedPipeline,
    queue: str,
    task: str,
    outcome: str,
    duration_s: float | None,
    minute: int,
    bucket: str,
    job_id: str,
    error: tuple[str, str, int],
) -> None:
    """RECORD_SCRIPT's writes as plain commands on the guarded pipeline (it runs them as one script)."""
    hour = minute // 60
    pipe.hincrby(queue_key(queue, minute), outcome, 1)
    pipe.if_new("EXPIRE", queue_key(queue, minute), defaults.STATS_MINUTE_TTL_S)
    pipe.hincrby(total_key(task), f"{outcome}:{queue}", 1)
    pipe.if_new("SADD", TASKS_KEY, task)
    if bucket and duration_s is not None:
        pipe.hincrby(minute_hist_key(task, minute), bucket, 1)
        pipe.if_new("EXPIRE", minute_hist_key(task, minute), defaults.STATS_MINUTE_TTL_S)
        pipe.hincrby(hour_hist_key(task, hour), bucket, 1)
        pipe.if_new("EXPIRE", hour_hist_key(task, hour), defaults.STATS_HOUR_TTL_S)
        if duration_s > _sent_max.get((task, minute), -1.0):
            if len(_sent_max) > defaults.STATS_SENT_MAX_KEPT:
                _sent_max.clear()
            _sent_max[(task, minute)] = duration_s
            pipe.zadd(max_key(task, hour), {str(minute): duration_s}, gt=True)
            pipe.if_new("EXPIRE", max_key(task, hour), defaults.STATS_HOUR_TTL_S)
        pipe.hincrby(total_key(task), bucket, 1)
        pipe.hincrbyfloat(total_key(task), "sum", duration_s)
    action, text, ttl = error
    if action == "set":
        pipe.set(ERROR_PREFIX + job_id, text, ex=ttl)
    elif action == "del":
        pipe.delete(ERROR_PREFIX + job_id)


def record_job_end(pipe: Pipeline | Redis, job: Any, outcome: str) -> None:
    """`record_end` for an RQ job object the worker is finishing."""
    try:
        task = task_name(job.func_name)
    except Exception:  # noqa: BLE001 - an unloadable record still counts, as "other"
        task = OTHER_TASK
    started, ended = job.started_at, job.ended_at
    duration = (ended - started).total_seconds() if started and ended else None
    text = getattr(job, "_exc_info", None)  # RQ sets it while recording the failure, just before this
    error: tuple[str, str, int] = ("", "", 0)
    if outcome == FINISHED:
        # Only a job that ran before can have an error line: its first run (generation 1) skips the DEL.
        error = ("", "", 0) if getattr(job, "run_generation", None) == 1 else ("del", "", 0)
    elif outcome in (FAILED, STOPPED) and isinstance(text, str) and text:
        error = ("set", text[-defaults.ERROR_TAIL_CHARS:], job.failure_ttl or defaults.FAILURE_TTL_S)
    record_end(pipe, job.origin or "?", task, outcome, duration, job_id=job.id, error=error)
