"""Finding jobs across every queue and list: by id prefix, task name, or text in parameters or error.

Reads go newest first, a chunk at a time, one pipelined round trip per chunk, and stop at a
time budget: a broker holding a million jobs answers within the budget, and says how much of
it was searched (`Found.complete`, `scanned` of `total`) instead of hanging a page. Job ids are
found by key name (SCAN), so an id prefix finds a job in any list, or in none.

Also here: the failed jobs of every queue, newest first, optionally of one task.
"""

from __future__ import annotations

import heapq
import re
import time
from base64 import b64decode
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from rq import Queue
from rq.results import Result

from .capped import inflate
from .jobs import CatalogJob, UnreadableRecord, catalog_spec

#: An id prefix shorter than this matches too much to be meant as an id.
MIN_ID_PREFIX = 6
#: A search answers within about this long, searched through or not.
BUDGET_S = 0.2
#: Jobs read per round trip.
CHUNK = 1000
MAX_HITS = 100
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
#: The lists searched for text, per queue, in this order.
LISTS = ("queued", "started", "failed", "deferred", "scheduled", "finished", "canceled")


@dataclass
class Found:
    """Matching job ids (best first) and how much of the broker was searched."""

    ids: list[str] = field(default_factory=list)
    scanned: int = 0
    total: int = 0
    complete: bool = True


def task_from_description(description: str | None) -> str:
    """The task at the front of a description: `sleep(seconds=1)` or `task_def.sleep.sleep(seconds=1)`."""
    head = (description or "").split("(", 1)[0].strip()
    spec = catalog_spec(head)
    return spec.name if spec is not None else head


@dataclass
class _Source:
    queue: str
    name: str
    key: str
    is_list: bool
    offset: int = 0
    size: int = 0

    def chunk(self, connection: Redis, count: int) -> list[str]:
        """The next `count` ids, newest first."""
        start, end = self.offset, self.offset + count - 1
        self.offset += count
        if self.is_list:
            raw = connection.lrange(self.key, -end - 1, -start - 1) if start < self.size else []
            return [item.decode() for item in reversed(raw)]
        return [item.decode().split(":", 1)[0] for item in connection.zrevrange(self.key, start, end)]

    @property
    def done(self) -> bool:
        return self.offset >= self.size


def _sources(connection: Redis, queue_names: list[str]) -> list[_Source]:
    found = []
    for name in queue_names:
        queue = Queue(name, connection=connection)
        keys = {
            "queued": queue.key,
            "started": queue.started_job_registry.key,
            "failed": queue.failed_job_registry.key,
            "deferred": queue.deferred_job_registry.key,
            "scheduled": queue.scheduled_job_registry.key,
            "finished": queue.finished_job_registry.key,
            "canceled": queue.canceled_job_registry.key,
        }
        found += [_Source(name, list_name, keys[list_name], list_name == "queued") for list_name in LISTS]
    with connection.pipeline(transaction=False) as pipe:
        for source in found:
            (pipe.llen if source.is_list else pipe.zcard)(source.key)
        for source, size in zip(found, pipe.execute(), strict=True):
            source.size = size
    return found


def search(
    connection: Redis, query: str, limit: int = MAX_HITS, budget_s: float = BUDGET_S, queues: list[str] | None = None
) -> Found:
    """Jobs whose id starts with `query` (6+ characters), or whose description or error contains it."""
    needle = query.strip()
    deadline = time.monotonic() + budget_s
    found = Found()
    names = queues if queues is not None else sorted(q.name for q in Queue.all(connection=connection))
    sources = _sources(connection, names)
    found.total = sum(s.size for s in sources)
    if not needle:
        return found
    if len(needle) >= MIN_ID_PREFIX and ID_CHARS.match(needle):
        found.complete = _ids_with_prefix(connection, needle, found.ids, limit, deadline)
    lowered = needle.lower()
    while len(found.ids) < limit:
        pending = [s for s in sources if not s.done]
        if not pending:
            break
        if time.monotonic() >= deadline:
            found.complete = False
            break
        for source in pending:
            ids = source.chunk(connection, CHUNK)
            found.scanned += len(ids)
            for job_id in _matching(connection, ids, lowered, with_errors=source.name == "failed"):
                if job_id not in found.ids:
                    found.ids.append(job_id)
    found.ids = found.ids[:limit]
    return found


def _ids_with_prefix(connection: Redis, prefix: str, hits: list[str], limit: int, deadline: float) -> bool:
    """Add job ids starting with `prefix` to `hits`; False when the budget ran out first."""
    head = CatalogJob.redis_job_namespace_prefix
    if connection.exists(head + prefix):
        hits.append(prefix)
    pattern = head + re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    cursor = 0
    while True:
        cursor, keys = connection.scan(cursor, match=pattern, count=10_000)
        for raw in keys:
            job_id = raw.decode(errors="replace")[len(head) :]
            if ":" not in job_id and job_id not in hits:
                hits.append(job_id)
        if cursor == 0 or len(hits) >= limit:
            return True
        if time.monotonic() >= deadline:
            return False


def _matching(connection: Redis, ids: list[str], lowered: str, with_errors: bool) -> Iterator[str]:
    if not ids:
        return
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(CatalogJob.key_for(job_id), "description")
            if with_errors:
                pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)
        replies = pipe.execute(raise_on_error=False)
    step = 2 if with_errors else 1
    for index, job_id in enumerate(ids):
        description = replies[index * step]
        if isinstance(description, bytes) and lowered in description.decode(errors="replace").lower():
            yield job_id
        elif with_errors and lowered in _error_text(replies[index * step + 1]).lower():
            yield job_id


def _error_text(reply: object) -> str:
    if not isinstance(reply, list) or not reply:
        return ""
    raw = reply[0][1].get(b"exc_string")
    try:
        return inflate(b64decode(raw)).decode(errors="replace") if raw else ""
    except (UnreadableRecord, ValueError):
        return ""


# -- failed, all queues ---------------------------------------------------------------------


@dataclass
class FailedPage:
    ids: list[str]
    total: int | None  # None: not counted within the budget (a task filter over many jobs)
    more: bool


def _newest_failed(connection: Redis, queue: str) -> Iterator[tuple[float, float, str]]:
    """(-score, -ended, id) of a queue's failed jobs, newest first.

    The registry's score is when the record expires (failure time + TTL, in whole seconds), so jobs
    that failed in the same second are put in order by their `ended_at`.
    """
    key = Queue(queue, connection=connection).failed_job_registry.key
    start = 0
    while True:
        chunk = connection.zrevrange(key, start, start + CHUNK - 1, withscores=True)
        if not chunk:
            return
        with connection.pipeline(transaction=False) as pipe:
            for member, _ in chunk:
                pipe.hget(CatalogJob.key_for(member.decode()), "ended_at")
            ended = pipe.execute(raise_on_error=False)
        yield from sorted(
            (-score, -_timestamp(end), member.decode()) for (member, score), end in zip(chunk, ended, strict=True)
        )
        start += CHUNK


def _timestamp(raw: object) -> float:
    if not isinstance(raw, bytes) or not raw:
        return 0.0
    try:
        return datetime.fromisoformat(raw.decode()).timestamp()
    except ValueError:
        return 0.0


def failed_jobs(
    connection: Redis,
    queues: list[str],
    task: str | None = None,
    offset: int = 0,
    limit: int = 50,
    budget_s: float = BUDGET_S,
) -> FailedPage:
    """One page of the failed jobs of `queues`, newest first, of `task` only if given."""
    deadline = time.monotonic() + budget_s
    merged = heapq.merge(*(_newest_failed(connection, q) for q in queues))
    wanted = offset + limit + 1
    matches: list[str] = []
    exhausted = False
    while len(matches) < wanted:
        batch = [job_id for *_, job_id in _take(merged, CHUNK)]
        if not batch:
            exhausted = True
            break
        matches += batch if not task else _of_task(connection, batch, task)
        if task and time.monotonic() >= deadline:
            break
    if not task:
        with connection.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zcard(Queue(queue, connection=connection).failed_job_registry.key)
            total: int | None = sum(pipe.execute())
    else:
        total = len(matches) if exhausted else None
    return FailedPage(matches[offset : offset + limit], total, len(matches) > offset + limit)


def _take(iterator: Iterator, count: int) -> list:
    taken = []
    for item in iterator:
        taken.append(item)
        if len(taken) >= count:
            break
    return taken


def _of_task(connection: Redis, ids: list[str], task: str) -> list[str]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(CatalogJob.key_for(job_id), "description")
        descriptions = pipe.execute(raise_on_error=False)
    return [
        job_id
        for job_id, raw in zip(ids, descriptions, strict=True)
        if isinstance(raw, bytes) and task_from_description(raw.decode(errors="replace")) == task
    ]
