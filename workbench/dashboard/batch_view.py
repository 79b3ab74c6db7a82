"""A batch (every enqueue is one, see `workbench.batches`) as one thing: progress, failures, time, speed-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.utils import now

from .. import batches, progress
from ..batches import BatchRecord
from ..jobs import CatalogJob, fetch_job
from .records import read_rows

ENDED = ("finished", "failed", "stopped", "canceled")
#: The batch page lists this many failed jobs with their errors.
FAILURES_SHOWN = 20


def _moment(raw: bytes | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.decode()).replace(tzinfo=UTC)
    except ValueError:
        return None


def summary(connection: Redis, record: BatchRecord) -> dict[str, Any]:
    """Counts by status, progress, wall time, busy time and speed-up of one batch (its job ids loaded)."""
    ids = list(record.job_ids)
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(CatalogJob.key_for(job_id), "status", "started_at", "ended_at")
        replies = pipe.execute(raise_on_error=False)
    counts: dict[str, int] = {}
    starts, ends, busy, running = [], [], 0.0, []
    for job_id, reply in zip(ids, replies, strict=True):
        status, started, ended = reply if isinstance(reply, list) else (None, None, None)
        word = status.decode(errors="replace") if status else "missing"
        counts[word] = counts.get(word, 0) + 1
        began, finished = _moment(started), _moment(ended)
        if began:
            starts.append(began)
        if word in ENDED and finished:
            ends.append(finished)
            if began:
                busy += (finished - began).total_seconds()
        if word == "started":
            running.append(job_id)
    done = sum(counts.get(word, 0) for word in (*ENDED, "missing"))
    fractions = _fractions(connection, running)
    total = len(ids)
    complete = total > 0 and done == total
    created = datetime.fromtimestamp(record.created, UTC) if record.created else None
    last = max(ends) if complete and ends else now()
    span = (last - min(starts)).total_seconds() if starts else None
    return {
        **{key: value for key, value in record.as_dict().items() if key != "job_ids"},
        "total": total,
        "counts": counts,
        "done": done,
        "failed": sum(counts.get(word, 0) for word in ("failed", "stopped", "canceled", "missing")),
        "progress": round((done + sum(fractions)) / total, 4) if total else 1.0,
        "complete": complete,
        "wall_s": round((last - created).total_seconds(), 3) if created else None,
        "busy_s": round(busy, 3),
        "span_s": round(span, 3) if span is not None else None,
        "speedup": round(busy / span, 2) if complete and span else None,
        "combined": _combined(connection, record) if complete else None,
    }


def _fractions(connection: Redis, job_ids: list[str]) -> list[float]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(CatalogJob.key_for(job_id), "meta")
        metas = pipe.execute(raise_on_error=False)
    fractions = []
    for raw in metas:
        try:
            meta = json.loads(raw) if isinstance(raw, bytes) else None
        except ValueError:
            meta = None
        fractions.append(progress.read(meta if isinstance(meta, dict) else None) or 0.0)
    return fractions


def _combined(connection: Redis, record: BatchRecord) -> dict | None:
    """For a split: the figures the combining job (the batch's last job) computed, if it finished."""
    if record.split <= 1 or not record.job_ids:
        return None
    try:
        result = fetch_job(record.job_ids[-1], connection).return_value()
    except Exception:  # noqa: BLE001 - gone, unreadable or not finished: no figures to show
        return None
    return result if isinstance(result, dict) else None


def recent(connection: Redis, limit: int = 20) -> list[dict[str, Any]]:
    """The newest batches with their summaries, newest first."""
    found = []
    for record in batches.recent(connection, limit):
        loaded = batches.load(connection, record.id)
        if loaded is not None:
            found.append(summary(connection, loaded))
    return found


def detail(connection: Redis, batch_id: str, page: int, per_page: int) -> dict[str, Any] | None:
    """The batch page's data: summary, its failed jobs with errors, one page of its jobs."""
    record = batches.load(connection, batch_id)
    if record is None:
        return None
    data = summary(connection, record)
    ids = list(record.job_ids)
    rows = read_rows(connection, ids[(page - 1) * per_page : page * per_page])
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(CatalogJob.key_for(job_id), "status")
        statuses = pipe.execute(raise_on_error=False)
    failed_ids = [i for i, s in zip(ids, statuses, strict=True) if s in (b"failed", b"stopped")][:FAILURES_SHOWN]
    data["failures"] = read_rows(connection, failed_ids)
    data["jobs"] = rows
    data["page"] = page
    data["per_page"] = per_page
    data["pages"] = max(1, -(-len(ids) // per_page))
    return data
