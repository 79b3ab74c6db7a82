"""Finding jobs across every queue and list: by id prefix, task name, or text in parameters or error.

A search reads each queue's lists newest first, a chunk at a time, and matches on the broker:
one small Lua script (`SCAN_SCRIPT`) reads a chunk of a list and returns only the ids whose
description (task and parameters), error line or quarantine reason contains the text. Nothing
but matches crosses the wire, so about a hundred thousand jobs are searched in a couple of
hundred milliseconds. It stops at a time budget: a broker holding millions of jobs still answers
at once, and says how much of it was searched (`Found.complete`, `scanned` of `total`). Ids are
matched by key name (SCAN), so an id prefix finds a job in any list, or in none.

Error text is searched in `workbench:error:<id>`, the plain last lines of a failed job's error
that workers write in the transaction that fails the job (`workbench.stats.record_job_end`); RQ
keeps the full traceback compressed, which a script cannot read.

The script reads job hashes named by the list it reads (keys it is not given): fine on a single
server or Sentinel, which is what the workbench supports; not on Redis Cluster.

Also here: the failed jobs of every queue, newest first, optionally of one task only.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from redis import Redis
from rq import Queue

from .jobs import CatalogJob, catalog_spec
from .stats import ERROR_PREFIX

#: An id prefix shorter than this matches too much to be meant as an id.
MIN_ID_PREFIX = 6
#: A search answers within about this long, searched through or not.
BUDGET_S = 0.15
#: Jobs the script reads per call (a call blocks the broker for about a millisecond per thousand).
CHUNK = 2000
MAX_HITS = 100
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
#: The lists searched, per queue, in this order.
LISTS = ("queued", "started", "failed", "deferred", "scheduled", "finished", "canceled")

#: KEYS[1] a sorted set or list of job ids; ARGV: kind (z|l), first, last (newest-first ranks),
#: mode (text|task), needle (lower case; for task, the names to match), job key prefix, error key prefix.
#: Returns {entries read, id, score, id, score, ...} for the matches.
SCAN_SCRIPT = """
local kind, first, last, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local needle, job_prefix, error_prefix = ARGV[5], ARGV[6], ARGV[7]
local entries = {}
if kind == 'z' then
  entries = redis.call('ZREVRANGE', KEYS[1], first, last, 'WITHSCORES')
else
  local items = redis.call('LRANGE', KEYS[1], -last - 1, -first - 1)
  for i = #items, 1, -1 do entries[#entries + 1] = items[i]; entries[#entries + 1] = '0' end
end
local out = {#entries / 2}
for i = 1, #entries, 2 do
  local id = string.match(entries[i], '^([^:]+)') or entries[i]
  local found = false
  local fields = redis.pcall('HMGET', job_prefix .. id, 'description', 'workbench_quarantined')
  if type(fields) == 'table' then
    local description = fields[1]
    if mode == 'task' then
      if type(description) == 'string' then
        local head = string.match(description, '^%s*([^%(]*)') or ''
        for name in string.gmatch(needle, '[^,]+') do
          if head == name then found = true end
        end
      end
    else
      if type(description) == 'string' and string.find(string.lower(description), needle, 1, true) then
        found = true
      elseif type(fields[2]) == 'string' and string.find(string.lower(fields[2]), needle, 1, true) then
        found = true
      else
        local err = redis.pcall('GET', error_prefix .. id)
        if type(err) == 'string' and string.find(string.lower(err), needle, 1, true) then found = true end
      end
    end
  end
  if found then out[#out + 1] = id; out[#out + 1] = entries[i + 1] end
end
return out
"""


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


def _task_heads(task: str) -> str:
    """The description heads that name `task`: its catalog name and its function path."""
    spec = catalog_spec(task)
    if spec is None:
        from task_def import CATALOG

        spec = CATALOG.get(task)
    heads = {task} | ({spec.name, spec.func_path} if spec is not None else set())
    return ",".join(sorted(h for h in heads if "," not in h))


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

    def scan(self, connection: Redis, mode: str, needle: str, count: int = CHUNK) -> list[tuple[str, float]]:
        """(id, score) of the matches among the next `count` entries."""
        reply = connection.register_script(SCAN_SCRIPT)(
            keys=[self.key],
            args=[
                "l" if self.is_list else "z",
                self.offset,
                self.offset + count - 1,
                mode,
                needle,
                CatalogJob.redis_job_namespace_prefix,
                ERROR_PREFIX,
            ],
        )
        read, flat = int(reply[0]), reply[1:]
        self.offset = self.offset + read if read == count else self.size
        return [(flat[i].decode(errors="replace"), float(flat[i + 1])) for i in range(0, len(flat), 2)]


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
        if connection.exists(CatalogJob.key_for(needle)) and len(needle) >= 32:
            found.ids = [needle]  # a whole job id: that job, nothing else to look for
            return found
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
            before = source.offset
            for job_id, _ in source.scan(connection, "text", lowered):
                if job_id not in found.ids:
                    found.ids.append(job_id)
            found.scanned += min(source.offset, source.size) - before
    found.ids = found.ids[:limit]
    return found


def _ids_with_prefix(connection: Redis, prefix: str, hits: list[str], limit: int, deadline: float) -> bool:
    """Add job ids starting with `prefix` to `hits`; False when the budget ran out first."""
    head = CatalogJob.redis_job_namespace_prefix
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
    heads = _task_heads(task) if task else ""
    while not source.done:
        if task:
            chunk = source.scan(connection, "task", heads)
        else:
            raw = connection.zrevrange(source.key, source.offset, source.offset + CHUNK - 1, withscores=True)
            source.offset = source.offset + len(raw) if len(raw) == CHUNK else source.size
            chunk = [(member.decode(errors="replace"), score) for member, score in raw]
        for job_id, score in chunk:
            yield -score, job_id


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
