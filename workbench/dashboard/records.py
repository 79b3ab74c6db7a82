"""Job records as the dashboard's lists show them: many at once, each judged on its own.

A list reads its page of jobs in one pipelined round trip (the fields it shows, and for ended
jobs the latest result), without RQ's `Job.fetch` per row. Every row is built on its own: a
registry entry whose job hash is gone, a hash that is not a hash, data that is not JSON, a
date that does not parse, or a compressed field that would inflate past
`defaults.MAX_INFLATED_BYTES` becomes an "unreadable" (or "too large") row with the reason,
and every other row still renders. Compressed fields are inflated at most to the cap, never
further, so a small record that would inflate to gigabytes costs no more than the cap.
Nothing here unpickles: job data, meta and results are read as JSON only.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError
from rq.results import Result
from rq.utils import now, utcparse

from .. import defaults, progress
from ..capped import inflate
from ..jobs import CatalogJob, RecordTooLarge, UnreadableRecord, catalog_spec, fetch_job

#: The job hash fields a list row needs.
FIELDS = (
    "status",
    "description",
    "origin",
    "created_at",
    "enqueued_at",
    "started_at",
    "ended_at",
    "worker_name",
    "meta",
    "data",
    "workbench_quarantined",
)
#: Statuses whose latest result is worth reading for a list (an error line to show).
ENDED = frozenset({"failed", "stopped", "canceled", "finished"})
UNREADABLE = "unreadable"
TOO_LARGE = "too large"
MISSING = "missing"


def load_job(connection: Redis, job_id: str) -> CatalogJob:
    """`jobs.fetch_job` after `check_record`: a record over the cap is refused before RQ inflates it.

    Raises NoSuchJobError, RecordTooLarge / UnreadableRecord, or whatever RQ raises for a malformed one.
    """
    check_record(connection, job_id)
    return fetch_job(job_id, connection)


def check_record(connection: Redis, job_id: str) -> None:
    """Raise RecordTooLarge / UnreadableRecord when the job's compressed fields are oversized or corrupt.

    A cheap look before RQ loads the record (RQ inflates without a limit).
    """
    data, exc_info = connection.hmget(CatalogJob.key_for(job_id), "data", "exc_info")
    for blob in (data, exc_info):
        if isinstance(blob, bytes) and blob:  # a client without decode_responses: bytes or None
            inflate(blob)
    for _, payload in connection.xrevrange(Result.get_key(job_id), "+", "-", count=1) or []:
        if payload and payload.get(b"exc_string"):
            try:
                inflate(b64decode(payload[b"exc_string"]))
            except ValueError:
                raise UnreadableRecord("its stored error text is not base64") from None


def task_of(func_name: str | None) -> str:
    """The catalog name of a function path, or the path itself when it is no catalog task."""
    spec = catalog_spec(func_name)
    return spec.name if spec is not None else (func_name or "?")


def short_params(kwargs: dict[str, Any], limit: int = defaults.DASHBOARD_PARAMS_SHOWN) -> str:
    text = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def last_line(text: str | None) -> str | None:
    """The exception line of a traceback (its last non-empty line), without the module path."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", lines[-1].strip()) if lines else None


def _text(value: bytes | None) -> str | None:
    return value.decode(errors="replace") if value is not None else None


def _date(value: bytes | None) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)  # RQ's fixed format, read without strptime's cost
    except ValueError:
        return utcparse(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _error_of(reply: Any) -> tuple[str | None, str | None]:
    """(full error text, its last line) from an XREVRANGE reply of the job's results."""
    if isinstance(reply, Exception) or not reply:
        return None, None
    _, payload = reply[0]
    raw = payload.get(b"exc_string")
    if not raw:
        return None, None
    try:
        text = inflate(b64decode(raw)).decode(errors="replace")
    except RecordTooLarge:
        return None, "(error text too large to show)"
    except (UnreadableRecord, ValueError):
        return None, "(error text unreadable)"
    return text, last_line(text)


def unreadable_row(job_id: str, state: str, reason: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "unreadable": reason,
        "state": state,
        "status": state,
        "description": None,
        "task": None,
        "params": None,
        "origin": None,
        "created_at": None,
        "enqueued_at": None,
        "started_at": None,
        "ended_at": None,
        "duration_s": None,
        "wait_s": None,
        "worker_name": None,
        "progress": None,
        "batch": None,
        "error": None,
        "exc_info": None,
    }


def build_row(job_id: str, values: list[bytes | None], result_reply: Any, moment: datetime) -> dict[str, Any]:
    """One row from the HMGET of FIELDS (and the latest result); never raises for a bad record."""
    if all(value is None for value in values):
        return unreadable_row(job_id, MISSING, "its record is gone (expired or deleted)")
    fields = dict(zip(FIELDS, values, strict=True))
    try:
        func, kwargs = _call(fields["data"])
        created, enqueued = _date(fields["created_at"]), _date(fields["enqueued_at"])
        started, ended = _date(fields["started_at"]), _date(fields["ended_at"])
    except RecordTooLarge as exc:
        return unreadable_row(job_id, TOO_LARGE, f"its record is too large to show: {exc}")
    except (UnreadableRecord, ValueError, TypeError) as exc:
        return unreadable_row(job_id, UNREADABLE, f"its record cannot be read ({exc})")
    meta = _meta(fields["meta"])
    status = _text(fields["status"]) or "?"
    error_text, error = _error_of(result_reply)
    quarantined = _text(fields["workbench_quarantined"])
    if quarantined and not error:
        error, error_text = quarantined, quarantined
    running = status == "started"
    return {
        "id": job_id,
        "unreadable": None,
        "state": "ok",
        "status": status,
        "description": _text(fields["description"]),
        "task": task_of(func),
        "params": short_params(kwargs),
        "origin": _text(fields["origin"]),
        "created_at": _iso(created),
        "enqueued_at": _iso(enqueued),
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_s": _seconds(started, moment if running else ended),
        "wait_s": _seconds(enqueued, started if started else (moment if status == "queued" else None)),
        "worker_name": _text(fields["worker_name"]) or None,
        "progress": _progress(meta) if running else None,
        "batch": meta.get("batch") if isinstance(meta.get("batch"), str) else None,
        "error": error if status != "finished" else None,
        "exc_info": error_text if status != "finished" else None,
    }


def _progress(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A running job's progress; a job that carried on from a checkpoint says so (issue 19)."""
    if progress.read(meta) is None:
        return None
    return {**meta[progress.META_KEY], "resumed": progress.resume_words(meta) or None}


def _call(data: bytes | None) -> tuple[str | None, dict[str, Any]]:
    """The function path and keyword arguments of a job's JSON data."""
    if not data:
        raise UnreadableRecord("it has no data")
    try:
        loaded = json.loads(inflate(data))
    except ValueError:
        raise UnreadableRecord("its data is not JSON") from None
    if not (isinstance(loaded, list) and len(loaded) == 4):
        raise UnreadableRecord("its data is not a job call")
    func, _, _, kwargs = loaded
    return (func if isinstance(func, str) else None), (kwargs if isinstance(kwargs, dict) else {})


def _meta(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}  # not JSON (pickled by someone else): shown as unreadable on the job page, never unpickled
    return meta if isinstance(meta, dict) else {}


def read_rows(connection: Redis, job_ids: Iterable[str], with_errors: bool = True) -> list[dict[str, Any]]:
    """Rows for `job_ids` in order, in one pipelined round trip."""
    ids = list(job_ids)
    if not ids:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(CatalogJob.key_for(job_id), *FIELDS)
            if with_errors:
                pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)
        replies = pipe.execute(raise_on_error=False)
    step = 2 if with_errors else 1
    moment = now()
    rows = []
    for index, job_id in enumerate(ids):
        values = replies[index * step]
        result = replies[index * step + 1] if with_errors else None
        if isinstance(values, ResponseError):
            rows.append(unreadable_row(job_id, UNREADABLE, "its record is not a job hash"))
            continue
        rows.append(build_row(job_id, values, result, moment))
    return rows
