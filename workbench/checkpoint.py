"""Checkpoints: a long task saves a small JSON state while it runs; a re-run carries on from it.

A catalog task opts in with `@task(..., resumable=True)` and calls two functions (both do nothing
outside a worker, so the task still runs as a plain function)::

    from workbench import checkpoint

    state = checkpoint.load()                  # the last saved state, or None on a fresh start
    ...
    checkpoint.save({"done": i, "total": t}, fraction=i / n)   # ask as often as you like

`save` writes at most once per CHECKPOINT_INTERVAL_S (a second; WORKBENCH_CHECKPOINT_S sets it for a
worker) per job, whatever the task asks; the first write comes a second into the run, so a short job
writes none. A state must be JSON and at
most CHECKPOINT_MAX_BYTES (64 KiB) as JSON: anything else raises CheckpointError with one sentence.

Where it lives: the field `workbench_checkpoint` of the job's own hash (`rq:job:<id>`). So it is read
with the job (no extra round trip when a worker takes it), expires with the job (a failed job's
checkpoint lasts as long as the failed job, ready for a requeue) and is deleted with it; a finished
job keeps none (the success transaction removes it, `drop`). Requeue, a retry or a recovery keep it:
the next run resumes. "Restart from zero" (`discard`) removes it.

Fenced: each write is one Lua step in the broker that refuses unless the job is still `started` and
its run generation (`workbench_generation`, see `workbench.fencing`) is still the writer's. A run
that lost its job (cut off, killed, overtaken by a re-run) gets `fencing.Superseded` raised inside
its task on its next write, so it stops instead of writing over the newer run's checkpoint.

Per job, not per process: the running job's context is a ContextVar set around the task, so jobs
running at once in threads of one worker each see their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from . import defaults, fencing, progress, settings
from .errors import CheckpointError

__all__ = ["FIELD", "CheckpointError", "Saved", "discard", "drop", "load", "parse", "running", "save", "summary"]

#: The job hash field holding the checkpoint document.
FIELD = "workbench_checkpoint"
#: A stored document is the state plus a few numbers; anything much larger was not written by `save`.
_MAX_DOCUMENT = defaults.CHECKPOINT_MAX_BYTES + 1024
#: The latest save time a document may claim (the end of year 9999): past it a date cannot be shown.
_LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()

#: One round trip: write the checkpoint only while the job exists, is started and is still this run's.
_SAVE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if ARGV[2] ~= '' and current ~= '' and current ~= ARGV[2] then return {-1, current} end
if redis.call('HGET', KEYS[1], 'status') ~= 'started' then return {-2, current} end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return {1, current}
"""
_SAVE = Script(None, _SAVE_LUA.encode())  # type: ignore[arg-type]  # bound to a client per call


@dataclass(frozen=True)
class Saved:
    """A stored checkpoint: the task's state and where the job was when it was taken."""

    state: Any
    fraction: float | None
    saved_at: float
    generation: int | None
    writes: int
    size: int


@dataclass
class _Run:
    """The checkpoint context of one running job."""

    job: Any  # the RQ job being run (its key and connection)
    generation: int | None
    saved: Saved | None
    next_write: float
    writes: int
    interval: float  # seconds between two writes at the least


_current: ContextVar[_Run | None] = ContextVar("workbench_checkpoint_run", default=None)
#: The clock the throttle reads (monotonic seconds).
clock = time.monotonic


# -- inside a task --------------------------------------------------------------------------------
def load() -> Any:
    """The state this job saved last (before an interruption), or None: a fresh start, or outside a worker."""
    run = _current.get()
    return run.saved.state if run is not None and run.saved is not None else None


def save(state: Any, *, fraction: float | None = None) -> bool:
    """Save `state` (JSON, at most 64 KiB) as this job's checkpoint, if a second passed since the last write.

    `fraction` is how far the job is at this state (0..1), shown when it resumes; by default the last
    progress the task reported. Returns whether a write happened. Raises CheckpointError for a state
    that is not JSON or too large, and `fencing.Superseded` when this run no longer owns the job.
    """
    run = _current.get()
    if run is None:
        return False
    now = clock()
    if now < run.next_write:
        return False
    run.next_write = now + run.interval
    if fraction is None:
        fraction = progress.read(run.job.meta)
    document = encode(state, fraction, run.generation, run.writes + 1)
    try:
        code, current = _SAVE(
            [run.job.key],
            [fencing.GENERATION_FIELD, "" if run.generation is None else str(run.generation), FIELD, document],
            client=run.job.connection,
        )
    except (redis.ConnectionError, redis.TimeoutError):
        return False  # the broker is away: the next ask tries again (a long cut is the fence's business)
    if code == 1:
        run.writes += 1
        return True
    if code == 0:
        return False  # the job was deleted while it ran
    raise fencing.Superseded(run.job.id, run.generation or 0, int(current) if current else None)


def encode(state: Any, fraction: float | None, generation: int | None, writes: int) -> str:
    """The stored document for `state`, or CheckpointError naming why it cannot be saved."""
    try:
        text = json.dumps(state, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"a checkpoint must be JSON (objects, lists, strings, finite numbers, true, false, null): {exc}."
        ) from None
    if len(text) > defaults.CHECKPOINT_MAX_BYTES:  # ASCII (json.dumps escapes the rest), so characters are bytes
        raise CheckpointError(
            f"a checkpoint of {len(text):,} bytes of JSON is over the limit of {defaults.CHECKPOINT_MAX_BYTES:,}; "
            "save only what the task needs to carry on."
        )
    head = {
        "fraction": None if fraction is None else round(min(max(float(fraction), 0.0), 1.0), 4),
        "saved_at": round(time.time(), 3),
        "generation": generation,
        "writes": writes,
    }
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"state":' + text + "}"


# -- around a task (the job layer) ----------------------------------------------------------------
@contextmanager
def running(job: Any, stored: bytes | str | None, generation: int | None) -> Iterator[None]:
    """Run a resumable task of `job` inside this block: `load` gives it `stored`, `save` writes fenced by
    `generation`. A job that carries on from a checkpoint is marked resumed (count and fraction) first."""
    saved = parse(stored)
    if saved is not None:
        progress.mark_resumed(job, saved.fraction)
    interval = settings.read(defaults.ENV_CHECKPOINT_INTERVAL)
    run = _Run(job, generation, saved, clock() + interval, saved.writes if saved else 0, interval)
    token = _current.set(run)
    try:
        yield
    finally:
        _current.reset(token)
        if run.writes > (saved.writes if saved else 0):
            job.checkpoint_written = True  # its end drops the checkpoint (a job that wrote none has none to drop)


def stored(raw_record: dict) -> bytes | None:
    """The checkpoint field of a job hash as read (HGETALL), or None."""
    value = raw_record.get(FIELD.encode()) or raw_record.get(FIELD)
    return value if isinstance(value, bytes) else value.encode() if isinstance(value, str) else None


def parse(raw: bytes | str | None) -> Saved | None:
    """The stored document, or None when there is none or it is not one `save` wrote (then: a fresh start)."""
    if not raw or len(raw) > _MAX_DOCUMENT:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    if not isinstance(document, dict) or "state" not in document:
        return None
    fraction, generation, writes = document.get("fraction"), document.get("generation"), document.get("writes")
    saved_at = document.get("saved_at")
    return Saved(
        state=document["state"],
        fraction=float(fraction) if isinstance(fraction, int | float) and 0 <= fraction <= 1 else None,
        saved_at=float(saved_at) if isinstance(saved_at, int | float) and 0 <= saved_at <= _LATEST else 0.0,
        generation=generation if isinstance(generation, int) else None,
        writes=writes if isinstance(writes, int) and writes >= 0 else 0,
        size=len(raw),
    )


# -- outside a task ----------------------------------------------------------------------------------
def drop(pipeline: Pipeline, job_key: str) -> None:
    """In a job's success transaction: a finished job keeps no checkpoint."""
    pipeline.hdel(job_key, FIELD)


def discard(connection: redis.Redis, job: Any) -> bool:
    """Restart from zero: remove the job's checkpoint, its progress and resume record. Returns whether it had one."""
    progress.forget_resumes(job.meta)
    with connection.pipeline() as pipe:
        pipe.hdel(job.key, FIELD)
        pipe.hset(job.key, "meta", job._serialize_meta())
        removed, _ = pipe.execute()
    return bool(removed)


def summary(raw: bytes | str | None) -> dict | None:
    """What a person needs to know of a stored checkpoint: how far, when, how big, how many writes."""
    saved = parse(raw)
    if saved is None:
        return None
    when = datetime.fromtimestamp(saved.saved_at, UTC).isoformat() if saved.saved_at else None
    return {"fraction": saved.fraction, "saved_at": when, "bytes": saved.size, "writes": saved.writes}
