"""Reading what jobs came to: one Outcome per job, with expected failures told apart from bugs.

A job stopped by a person, a refused scrape, bad parameters or a timeout is an *expected* outcome:
the workbench raised it on purpose with one sentence, and that sentence is all a person needs.
Anything else (a ZeroDivisionError in a task, a library's exception) is *unexpected*: its full
traceback is kept so the console can show it. Nothing here prints.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from rq.job import JobStatus
from rq.results import Result

from .broker import broker_errors, wrong_type
from .capped import latest_result
from .jobs import SERIALIZER, CatalogJob, RecordTooLarge
from .progress import resumed as read_resumed

#: Modules whose exceptions carry a sentence for a person: the workbench's own, the task catalog's,
#: and RQ's timeout (the job ran past the timeout it was given).
EXPECTED_MODULES = ("workbench.", "task_def.", "rq.timeouts.")
#: A traceback's exception line: `package.module.Class: message` (or a bare `Class: message`).
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)(?::\s?(.*))?$")
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Outcome:
    """One job as the results table and --json show it."""

    id: str
    queue: str
    task: str
    params: dict
    status: str
    result: Any
    #: One sentence: why the job did not finish (None when it finished).
    error: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    #: The full traceback, only for an unexpected error (a bug, not a refusal or a stop).
    traceback: str | None = None
    batch: str | None = None
    #: {"times": n, "from": fraction} when the job carried on from a checkpoint (`workbench.checkpoint`).
    resumed: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == JobStatus.FINISHED.value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Failure:
    """A stored error text, read: its one sentence and whether it was expected."""

    sentence: str
    expected: bool


def read_failure(text: str | None) -> Failure | None:
    """Split RQ's stored error text into a sentence, and say whether the workbench raised it on purpose.

    A text without a traceback is a reason the workbench or RQ wrote itself (a dead worker's job,
    a quarantined record): expected, and already a sentence.
    """
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return None
    starts = [number for number, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return Failure(_strip_type(lines[-1]), expected=True)
    after = [line for line in lines[starts[-1] + 1 :] if not line.startswith((" ", "\t"))]
    if not after:
        return Failure(lines[-1].strip(), expected=False)
    match = _EXCEPTION_LINE.match(after[0])
    if match is None:
        return Failure(after[-1], expected=False)
    module, name, message = match.group(1), match.group(2), (match.group(3) or "").strip()
    expected = module.startswith(EXPECTED_MODULES)
    return Failure(message or name if expected else f"{name}: {message}" if message else name, expected)


def _strip_type(line: str) -> str:
    """`rq.timeouts.JobTimeoutException: ran too long` -> `JobTimeoutException: ran too long`."""
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", line.strip())


def outcomes(connection: Redis, job_ids: list[str]) -> list[Outcome]:
    """Fetch every job once, in one pipeline, in the order given."""
    with broker_errors(connection, "reading the results"):
        with connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(CatalogJob.key_for(job_id))
            records = [_hash_or_refusal(reply) for reply in pipe.execute(raise_on_error=False)]
        return [
            _outcome(job_id, _restore(job_id, record, connection))
            for job_id, record in zip(job_ids, records, strict=True)
        ]


def _restore(job_id: str, record: dict | Exception, connection: Redis) -> CatalogJob | str | None:
    """The job, None when it is gone, or UNREADABLE when its record is malformed (one bad record
    must not hide the others' results; the consumer's janitor quarantines it)."""
    if not record:
        return None
    if isinstance(record, Exception):  # its key holds another type (forged)
        return UNREADABLE
    job = CatalogJob(job_id, connection=connection, serializer=SERIALIZER)
    try:
        job.restore(record)
    except Exception:  # noqa: BLE001 - any malformed field: RQ raises several kinds
        return UNREADABLE
    return job


def _outcome(job_id: str, job: CatalogJob | str | None) -> Outcome:
    if job is None:
        return Outcome(job_id, "?", "?", {}, "missing", None, "the job expired or was deleted", None, None, None)
    if not isinstance(job, CatalogJob):
        return Outcome(job_id, "?", "?", {}, UNREADABLE, None, "the job's record is malformed", None, None, None)
    raw_status = job.get_status(refresh=False)
    status = str(getattr(raw_status, "value", raw_status) or "unknown")
    started, ended = job.started_at, job.ended_at
    duration = (ended - started).total_seconds() if started and ended and status != "canceled" else None
    finished = status == JobStatus.FINISHED.value
    unreadable = None
    try:
        latest = latest_result(job)
    except RecordTooLarge as exc:  # a compressed error text that would inflate past the cap: not inflated
        latest, unreadable = None, f"its error text is too large to show ({exc})"
    except Exception:  # noqa: BLE001 - an unreadable result must not hide the job
        latest = None
    result = latest.return_value if finished and latest else None
    failed_text = latest.exc_string if latest and latest.type == Result.Type.FAILED else None
    failure = read_failure(failed_text) if not finished else None
    meta = job.meta if isinstance(job.meta, dict) else {}
    return Outcome(
        id=job.id,
        queue=job.origin,
        task=str(meta.get("task") or job.func_name or "?"),
        params=dict(job.kwargs or {}),
        status=status,
        result=result,
        error=None if finished else (failure.sentence if failure else unreadable or _why_not(status)),
        started_at=started.isoformat() if started else None,
        ended_at=ended.isoformat() if ended else None,
        duration_s=round(duration, 3) if duration is not None else None,
        traceback=failed_text.strip() if failure is not None and not failure.expected and failed_text else None,
        batch=str(meta["batch"]) if meta.get("batch") else None,
        resumed=read_resumed(meta),
    )


def _why_not(status: str) -> str | None:
    if status == JobStatus.CANCELED.value:
        return "never ran: a job it depends on was stopped or canceled"
    if status in (JobStatus.QUEUED.value, JobStatus.STARTED.value, JobStatus.DEFERRED.value):
        return None  # not over yet: nothing went wrong
    if status == JobStatus.SCHEDULED.value:
        return None
    return status


def status_counts(connection: Redis, job_ids: list[str]) -> Counter[str]:
    """How many of the jobs are in each state (`missing` for expired or deleted ones), in one pipeline."""
    with broker_errors(connection, "counting the batch's jobs"):
        with connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(CatalogJob.key_for(job_id), "status")
            statuses = [_hash_or_refusal(reply) for reply in pipe.execute(raise_on_error=False)]
    return Counter(
        UNREADABLE if isinstance(raw, Exception) else raw.decode(errors="replace") if raw else "missing"
        for raw in statuses
    )


def _hash_or_refusal(reply: Any) -> Any:
    """A job's reply as read, or the refusal itself when its key holds another type (WRONGTYPE: a forged job
    key, one unreadable row); any other broker error is raised (`broker_errors` words it)."""
    if isinstance(reply, Exception) and not wrong_type(reply):
        raise reply
    return reply
