"""Named batches: every enqueue (a `--split` included) is one batch a person can come back to.

Stored beside RQ's keys, written in the same MULTI/EXEC transaction as the batch's jobs, so a
batch record exists exactly when its jobs do:

- `workbench:batch:<id>`       hash: task, queue, params (JSON), split, count, created_at (ISO UTC),
                               created (unix seconds), timeout, retries, scheduled_for (ISO UTC or "");
- `workbench:batch:<id>:jobs`  list of job ids, in enqueue order (for a split: chunks, then the combiner);
- `workbench:batches`          sorted set of batch ids by creation time (unix seconds).

Each job's meta also carries `"batch": <id>`. The records expire with the jobs' results (the
longest of RQ's result and failure TTLs, past the jobs' own timeout); `recent` drops ids whose
record has expired. Nothing here prints; readers get plain data.

Anything with broker access can write these keys. A key of another type (WRONGTYPE), an index member
that is no batch id, a job id that is not UTF-8: each reads as one record marked `unreadable` (with
the reason), never as an error that takes every batch's listing down.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from redis import Redis, ResponseError
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from . import defaults
from .broker import wrong_type

BATCHES_KEY = defaults.KEY_PREFIX + "batches"
_PREFIX = defaults.KEY_PREFIX + "batch:"
#: Latest moment a record may name (9999-12-31, the last day `datetime` can show).
_LAST_MOMENT = 253_402_300_799
#: Batch ids: 12 hex digits, short enough to type, unique enough for a broker's lifetime.
ID_LENGTH = 12
_ID = re.compile(rb"[0-9a-f]{%d}" % ID_LENGTH)


def new_id() -> str:
    """A fresh batch id."""
    return uuid4().hex[:ID_LENGTH]


def record_key(batch_id: str) -> str:
    return _PREFIX + batch_id


def jobs_key(batch_id: str) -> str:
    return _PREFIX + batch_id + ":jobs"


def ttl_s(timeout_s: int) -> int:
    """How long a batch's records live: as long as its longest-kept job result, past its timeout."""
    return max(defaults.RESULT_TTL_S, defaults.FAILURE_TTL_S) + max(timeout_s, 0)


@dataclass(frozen=True)
class BatchRecord:
    """What the broker knows about one batch."""

    id: str
    task: str
    queue: str
    params: dict[str, Any]
    split: int
    count: int
    created_at: str
    created: float
    timeout_s: int
    retries: int
    job_ids: tuple[str, ...] = ()
    #: When a delayed batch's jobs move onto the queue (ISO UTC), or "" for a batch queued at once.
    scheduled_for: str = ""
    #: Why (part of) this batch could not be read (a forged key), or "" for a whole record.
    unreadable: str = ""

    def as_dict(self) -> dict[str, Any]:
        extra = {"unreadable": self.unreadable} if self.unreadable else {}
        return {
            "id": self.id,
            "task": self.task,
            "queue": self.queue,
            "params": self.params,
            "split": self.split,
            "count": self.count,
            "created_at": self.created_at,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "job_ids": list(self.job_ids),
            "scheduled_for": self.scheduled_for or None,
            **extra,
        }


def unreadable(batch_id: str, reason: str) -> BatchRecord:
    """A batch (or the batch index) that could not be read at all, and why."""
    return BatchRecord(batch_id, "?", "?", {}, 1, 0, "", 0.0, 0, 0, unreadable=reason)


def _job_ids(raw: list[bytes]) -> tuple[list[str], str]:
    """A batch's job ids, and a reason when some are not UTF-8 (forged; left out)."""
    ids, bad = [], 0
    for job_id in raw:
        try:
            ids.append(job_id.decode())
        except UnicodeDecodeError:
            bad += 1
    return ids, f"{bad:,} of its job ids are not text (left out)" if bad else ""


def write(
    pipe: Pipeline,
    batch_id: str,
    *,
    task: str,
    queue: str,
    params: Mapping[str, Any],
    job_ids: list[str],
    split: int = 1,
    timeout_s: int = 0,
    retries: int = 0,
    created: float | None = None,
    delay_s: int = 0,
) -> None:
    """Queue the batch's records on `pipe` (the jobs' own MULTI/EXEC pipeline).

    `delay_s`: the jobs wait that long in RQ's scheduled registry first, so the records live that much longer.
    """
    moment = time.time() if created is None else created
    fields: dict[FieldT, EncodableT] = {
        "id": batch_id,
        "task": task,
        "queue": queue,
        "params": json.dumps(dict(params), sort_keys=True, default=str),
        "split": split,
        "count": len(job_ids),
        "created_at": datetime.fromtimestamp(moment, UTC).isoformat(),
        "created": repr(moment),
        "timeout": timeout_s,
        "retries": retries,
        "scheduled_for": datetime.fromtimestamp(moment + delay_s, UTC).isoformat() if delay_s else "",
    }
    ttl = ttl_s(timeout_s) + max(delay_s, 0)
    pipe.hset(record_key(batch_id), mapping=fields)
    pipe.expire(record_key(batch_id), ttl)
    if job_ids:
        pipe.rpush(jobs_key(batch_id), *job_ids)
        pipe.expire(jobs_key(batch_id), ttl)
    pipe.zadd(BATCHES_KEY, {batch_id: moment})


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in raw.items()}


#: Counts and seconds in a record are never above this: anything larger was not written by `write`.
_MAX_FIELD = 10**12


def _int(text: str | None, default: int = 0) -> int:
    """A whole number field; a forged one (not a number, negative, absurd) reads as the default."""
    try:
        value = int(text or default)
    except ValueError:
        return default
    return value if 0 <= value <= _MAX_FIELD else default


def _float(text: str | None) -> float:
    """A unix time field; a forged one (not a number, NaN, out of `datetime`'s range) reads as 0."""
    try:
        value = float(text or 0.0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and 0 <= value <= _LAST_MOMENT else 0.0


def _iso(text: str | None) -> str:
    """An ISO UTC time field as written, or "" when it does not read as one (a forged record)."""
    try:
        when = datetime.fromisoformat(text or "")
        when.astimezone(UTC), when.astimezone()  # every view shows it in UTC or local time
    except (ValueError, OverflowError, OSError):
        return ""
    return text or "" if 1970 <= when.year <= 9998 else ""


def _record(batch_id: str, fields: dict[str, str], job_ids: list[str], problem: str = "") -> BatchRecord:
    try:
        params = json.loads(fields.get("params") or "{}")
    except (ValueError, RecursionError):  # a forged record: shown without its parameters
        params = {}
    return BatchRecord(
        id=batch_id,
        task=fields.get("task", "?"),
        queue=fields.get("queue", "?"),
        params=params if isinstance(params, dict) else {},
        split=_int(fields.get("split"), 1) or 1,
        count=_int(fields.get("count")),
        created_at=_iso(fields.get("created_at")),
        created=_float(fields.get("created")),
        timeout_s=_int(fields.get("timeout")),
        retries=_int(fields.get("retries")),
        job_ids=tuple(job_ids),
        scheduled_for=_iso(fields.get("scheduled_for")),
        unreadable=problem,
    )


def load(connection: Redis, batch_id: str) -> BatchRecord | None:
    """The batch with its job ids, or None when no such batch exists (or it expired).

    A record or job list of another type reads as an `unreadable` record (without what it could not read).
    """
    with connection.pipeline(transaction=False) as pipe:
        pipe.hgetall(record_key(batch_id))
        pipe.lrange(jobs_key(batch_id), 0, -1)
        raw, ids = pipe.execute(raise_on_error=False)
    for reply in (raw, ids):
        if isinstance(reply, Exception) and not wrong_type(reply):
            raise reply
    if wrong_type(raw):
        return unreadable(batch_id, f"its record ({record_key(batch_id)}) is not a hash")
    if not raw:
        return None
    if wrong_type(ids):
        return _record(batch_id, _decode(raw), [], f"its job list ({jobs_key(batch_id)}) is not a list")
    return _record(batch_id, _decode(raw), *_job_ids(ids))


def recent(connection: Redis, limit: int = 20) -> list[BatchRecord]:
    """The newest `limit` batches, newest first, without their job ids (see `load`).

    An index of another type is one unreadable entry; a member that is no batch id is one unreadable entry.
    """
    try:
        members = connection.zrevrange(BATCHES_KEY, 0, max(limit, 1) * 2 - 1)
    except ResponseError as exc:
        if not wrong_type(exc):
            raise
        return [unreadable(BATCHES_KEY, "the batch index is not a sorted set")]
    if not members:
        return []
    raws = [raw if isinstance(raw, bytes) else str(raw).encode() for raw in members]
    ids = [raw.decode() for raw in raws if _ID.fullmatch(raw)]
    forged = [
        unreadable(raw.decode(errors="replace"), "not a batch id the producer writes")
        for raw in raws
        if not _ID.fullmatch(raw)
    ]
    with connection.pipeline(transaction=False) as pipe:
        for batch_id in ids:
            pipe.hgetall(record_key(batch_id))
        records = pipe.execute(raise_on_error=False) if ids else []
    found, expired = [], []
    for batch_id, raw in zip(ids, records, strict=True):
        if wrong_type(raw):
            found.append(unreadable(batch_id, f"its record ({record_key(batch_id)}) is not a hash"))
        elif isinstance(raw, Exception):
            raise raw
        elif raw:
            found.append(_record(batch_id, _decode(raw), []))
        else:
            expired.append(batch_id)
    if expired:
        connection.zrem(BATCHES_KEY, *expired)
    return (found + forged)[:limit]
