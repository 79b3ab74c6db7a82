"""Finding jobs across every queue and list: by id prefix, task name, or text in parameters or error.

A search reads each queue's lists newest first, a chunk at a time: one `SORT_RO ... BY nosort
GET` per chunk returns the ids with their descriptions (task and parameters), error lines and
quarantine reasons, read by the broker in C (a Lua loop, or a pipeline of HGETs, costs several
times more per job). It stops at a time budget: a broker holding millions of jobs still answers
at once, and says how much of it was searched (`Found.complete`, `scanned` of `total`). Ids are
matched in the same pass (an id prefix of 6 characters or more), and a whole id directly.

Error text is searched in `workbench:error:<id>`, the plain last lines of a failed job's error
that workers write in the transaction that fails the job (`workbench.stats.record_job_end`); RQ
keeps the full traceback compressed, which a script cannot read.

SORT's GET patterns read keys named by the list (keys it is not given): fine on a single server
or Sentinel, which is what the workbench supports; not on Redis Cluster.

Also here: the failed jobs of every queue, newest first, optionally of one task only.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from redis import Redis
from rq import Queue

from . import defaults
from .catalog_load import load_catalog
from .jobs import CatalogJob, catalog_spec
from .known_queues import queue_names
from .stats import ERROR_PREFIX
from .text import as_text

#: A sorted set read with its scores.
Pairs = list[tuple[bytes, float]]
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
#: The lists searched, per queue, in this order.
LISTS = ("queued", "started", "failed", "deferred", "scheduled", "finished", "canceled")


@dataclass
class Found:
    """Matching job ids (best first) and how much of the broker was searched."""

    ids: list[str] = field(default_factory=list)
    scanned: int = 0
    total: int = 0
    complete: bool = True
    resume: str | None = None  # where the next part of the same search starts


def task_from_description(description: str | None) -> str:
    """The task at the front of a description: `sleep(seconds=1)` or `task_def.sleep.sleep(seconds=1)`."""
    head = (description or "").split("(", 1)[0].strip()
    spec = catalog_spec(head)
    return spec.name if spec is not None else head


def _task_heads(task: str) -> set[str]:
    """The description heads that name `task`: its catalog name and its function path."""
    spec = catalog_spec(task)
    if spec is None:
        spec = load_catalog().get(task)
    return {task} | ({spec.name, spec.func_path} if spec is not None else set())


@dataclass
class _Source:
    """One list of one queue, read newest first."""

    queue: str
    name: str
    key: str
    is_list: bool
    offset: int = 0
    size: int = 0

    @property
    def done(self) -> bool:
        return self.offset >= self.size

    def read(self, connection: Redis, count: int = defaults.SEARCH_CHUNK) -> list[tuple[str, list[bytes | None]]]:
        """The next `count` entries, newest first: (id, [description, error line, quarantine reason])."""
        if self.done:
            return []
        if self.name == "started":  # entries are "<id>:<execution>": SORT's patterns cannot name the job
            raw = connection.zrevrange(self.key, self.offset, self.offset + count - 1)
            ids = [as_text(member, errors="replace").split(":", 1)[0] for member in raw]
            with connection.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(CatalogJob.key_for(job_id), "description")
                values = pipe.execute(raise_on_error=False)
            self.offset += count
            return [(job_id, [v if isinstance(v, bytes) else None]) for job_id, v in zip(ids, values, strict=True)]
        head = CatalogJob.redis_job_namespace_prefix
        patterns = [f"{head}*->description"]
        if self.name == "failed":
            patterns += [ERROR_PREFIX + "*", f"{head}*->workbench_quarantined"]
        gets = [word for pattern in ("#", *patterns) for word in ("GET", pattern)]
        flat = connection.execute_command(
            "SORT_RO", self.key, "BY", "nosort", "DESC", "LIMIT", self.offset, count, *gets
        )
        self.offset += count
        step = 1 + len(patterns)
        return [(flat[i].decode(errors="replace"), flat[i + 1 : i + step]) for i in range(0, len(flat), step)]


def _sources(connection: Redis, queue_names: list[str], lists: tuple[str, ...] = LISTS) -> list[_Source]:
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
        found += [_Source(name, list_name, keys[list_name], list_name == "queued") for list_name in lists]
    with connection.pipeline(transaction=False) as pipe:
        for source in found:
            (pipe.llen if source.is_list else pipe.zcard)(source.key)
        sizes = pipe.execute(raise_on_error=False) if found else []
    for source, size in zip(found, sizes, strict=True):
        source.size = 0 if isinstance(size, Exception) else size  # a key of another type: nothing to search there
    return found


def search(
    connection: Redis,
    query: str,
    limit: int = defaults.SEARCH_MAX_HITS,
    budget_s: float = defaults.SEARCH_BUDGET_S,
    resume: str | None = None,
) -> Found:
    """Jobs whose id starts with `query` (6+ characters), or whose description or error contains it.

    Stops at `limit` matches or after `budget_s`; then `Found.resume` says where to carry on
    (pass it back as `resume` for the next part of the same search).
    """
    needle = query.strip()
    deadline = time.monotonic() + budget_s
    found = Found()
    sources = _sources(connection, queue_names(connection))
    found.total = sum(s.size for s in sources)
    for source, offset in zip(sources, _offsets(resume, len(sources)), strict=False):
        source.offset = offset
    if not needle:
        return found
    id_like = len(needle) >= defaults.SEARCH_MIN_ID_PREFIX and bool(ID_CHARS.match(needle))
    if id_like and len(needle) >= 32 and connection.exists(CatalogJob.key_for(needle)):
        found.ids = [needle]  # a whole job id: that job, nothing else to look for
        return found
    lowered = needle.lower().encode()
    while len(found.ids) < limit and time.monotonic() < deadline:
        pending = [s for s in sources if not s.done]
        if not pending:
            break
        for source in pending:
            for job_id, texts in source.read(connection):
                hit = (id_like and job_id.startswith(needle)) or any(t and lowered in t.lower() for t in texts)
                if hit and job_id not in found.ids:
                    found.ids.append(job_id)
    found.scanned = sum(min(s.offset, s.size) for s in sources)
    found.complete = all(s.done for s in sources)
    if not found.complete:
        found.resume = f"{len(sources)}:" + ".".join(str(s.offset) for s in sources)
    found.ids = found.ids[:limit]
    return found


def _offsets(resume: str | None, count: int) -> list[int]:
    """The per-list offsets of a `Found.resume` token; none when it does not fit the lists there are now."""
    head, _, body = (resume or "").partition(":")
    parts = body.split(".") if body else []
    if head != str(count) or len(parts) != count or not all(p.isdigit() for p in parts):
        return []
    return [int(p) for p in parts]


# -- failed, all queues ---------------------------------------------------------------------


@dataclass
class FailedPage:
    ids: list[str]
    total: int | None  # None: not counted within the budget (a task filter over many jobs)
    more: bool


def _newest_failed(connection: Redis, source: _Source, task: str | None) -> Iterator[tuple[float, str]]:
    """(-score, id) of a queue's failed jobs (of `task` only, if given), newest first.

    The score is when the record expires: the failure time (whole seconds) plus the failure TTL.
    """
    heads = _task_heads(task) if task else set()
    while not source.done:
        if task:
            entries = source.read(connection)
            ids = [job_id for job_id, texts in entries if _head(texts[0]) in heads]
            scores = connection.zmscore(source.key, ids) if ids else []
            chunk = [(job_id, score or 0.0) for job_id, score in zip(ids, scores, strict=True)]
        else:
            last = source.offset + defaults.SEARCH_CHUNK - 1
            raw = connection.zrevrange(source.key, source.offset, last, withscores=True)
            source.offset += defaults.SEARCH_CHUNK
            # redis-py cannot tell from withscores=True that the reply is (member, score) pairs
            chunk = [(as_text(member, errors="replace"), score) for member, score in cast(Pairs, raw)]
        for job_id, score in chunk:
            yield -score, job_id


def _head(description: bytes | None) -> str:
    return (description or b"").decode(errors="replace").split("(", 1)[0].strip()


def failed_jobs(
    connection: Redis,
    queues: list[str],
    task: str | None = None,
    offset: int = 0,
    limit: int = 50,
    budget_s: float = defaults.SEARCH_BUDGET_S,
) -> FailedPage:
    """One page of the failed jobs of `queues`, newest first, of `task` only if given."""
    deadline = time.monotonic() + budget_s
    sources = _sources(connection, queues, ("failed",))
    merged = heapq.merge(*(_newest_failed(connection, source, task) for source in sources))
    wanted = offset + limit + 1
    matches: list[tuple[float, str]] = []
    exhausted = True
    for item in merged:
        if len(matches) >= wanted and item[0] != matches[-1][0]:
            exhausted = False  # past the page, and past the last tie with it
            break
        matches.append(item)
        if task and time.monotonic() >= deadline:
            exhausted = all(source.done for source in sources)
            break
    _order_ties(connection, matches, offset, offset + limit)
    total = sum(s.size for s in sources) if not task else (len(matches) if exhausted else None)
    page = matches[offset : offset + limit]
    return FailedPage([job_id for _, job_id in page], total, len(matches) > offset + limit)


def _order_ties(connection: Redis, matches: list[tuple[float, str]], start: int, end: int) -> None:
    """Order jobs that failed in the same second by when they ended, newest first, where it decides the page.

    Scores are whole seconds; only the runs of equal scores that reach into [start, end) are read.
    """
    index = 0
    while index < len(matches):
        run_end = index
        while run_end + 1 < len(matches) and matches[run_end + 1][0] == matches[index][0]:
            run_end += 1
        if run_end > index and run_end >= start and index < end:
            run = matches[index : run_end + 1]
            with connection.pipeline(transaction=False) as pipe:
                for _, job_id in run:
                    pipe.hget(CatalogJob.key_for(job_id), "ended_at")
                ended = pipe.execute(raise_on_error=False)
            keyed = sorted(zip(run, ended, strict=True), key=lambda pair: _text(pair[1]), reverse=True)
            matches[index : run_end + 1] = [item for item, _ in keyed]
        index = run_end + 1


def _text(raw: object) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else ""
