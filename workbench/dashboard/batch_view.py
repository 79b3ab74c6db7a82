"""A batch (every enqueue is one, see `workbench.batches`) as one thing: progress, failures, time, speed-up.

A batch can hold 10,000 jobs. Its summary is computed on the broker by one small Lua script
(`SUMMARY_SCRIPT`): it walks the batch's job list, reads each job's status and run times, and
returns the counts by status, the first start, the last end, the summed run time and the ids
of the running and failed jobs. One round trip per batch, whatever its size.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.utils import now

from .. import batches, defaults, progress
from ..batches import BatchRecord
from ..jobs import CatalogJob
from ..text import as_text
from .records import load_job, read_rows

ENDED = ("finished", "failed", "stopped", "canceled")

#: KEYS[1] the batch's job list; ARGV[1] the job key prefix, ARGV[2] how many failed ids to return.
#: Dates are RQ's fixed-width "YYYY-MM-DDTHH:MM:SS.ffffffZ", so text order is time order.
SUMMARY_SCRIPT = """
local function seconds(t)
  local y, mo, d, h, mi, s = string.match(t, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d%.]+)')
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1; mo = mo + 12 end
  local days = 365 * y + math.floor(y / 4) - math.floor(y / 100) + math.floor(y / 400)
             + math.floor((153 * (mo - 3) + 2) / 5) + tonumber(d) - 719469
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end
local ended = {finished = true, failed = true, stopped = true, canceled = true}
local counts, order = {}, {}
local first, last, busy = '', '', 0
local running, failed = {}, {}
local ids = redis.pcall('LRANGE', KEYS[1], 0, -1)
local unlisted = 0
if type(ids) ~= 'table' or ids.err then ids = {}; unlisted = 1 end  -- a job list of another type (forged)
for _, id in ipairs(ids) do
  local f = redis.pcall('HMGET', ARGV[1] .. id, 'status', 'started_at', 'ended_at')
  local status = 'missing'
  if type(f) == 'table' and f[1] then status = f[1] end
  if not counts[status] then counts[status] = 0; order[#order + 1] = status end
  counts[status] = counts[status] + 1
  if type(f) == 'table' then
    local began, stop = f[2], f[3]
    if began and began ~= '' and (first == '' or began < first) then first = began end
    if ended[status] and stop and stop ~= '' then
      if stop > last then last = stop end
      local a, b = began and began ~= '' and seconds(began), seconds(stop)
      if a and b and b >= a then busy = busy + (b - a) end
    end
  end
  if status == 'started' then running[#running + 1] = id end
  if (status == 'failed' or status == 'stopped') and #failed < tonumber(ARGV[2]) then failed[#failed + 1] = id end
end
local flat = {}
for _, status in ipairs(order) do flat[#flat + 1] = status; flat[#flat + 1] = counts[status] end
return {flat, first, last, tostring(busy), running, failed, unlisted}
"""


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def summary(connection: Redis, record: BatchRecord) -> dict[str, Any]:
    """Counts by status, progress, wall time, busy time and speed-up of one batch."""
    reply = connection.register_script(SUMMARY_SCRIPT)(
        keys=[batches.jobs_key(record.id)],
        args=[CatalogJob.redis_job_namespace_prefix, defaults.DASHBOARD_FAILURES_SHOWN],
    )
    flat, first, last, busy_text, running, failed_ids, unlisted = _decoded(reply)
    if unlisted and not record.unreadable:
        record = replace(record, unreadable=f"its job list ({batches.jobs_key(record.id)}) is not a list")
    counts = {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}
    total = sum(counts.values())
    done = sum(counts.get(word, 0) for word in (*ENDED, "missing"))
    complete = total > 0 and done == total
    created = datetime.fromtimestamp(record.created, UTC) if record.created else None
    began, ended = _moment(first) if first else None, _moment(last) if last else None
    end = ended if complete and ended else now()
    span = (end - began).total_seconds() if began else None
    busy = float(busy_text)
    return {
        **{key: value for key, value in record.as_dict().items() if key != "job_ids"},
        "total": total,
        "counts": counts,
        "done": done,
        "failed": sum(counts.get(word, 0) for word in ("failed", "stopped", "canceled", "missing")),
        "progress": round((done + sum(_fractions(connection, running))) / total, 4) if total else 1.0,
        "complete": complete,
        "wall_s": round((end - created).total_seconds(), 3) if created else None,
        "busy_s": round(busy, 3),
        "span_s": round(span, 3) if span is not None else None,
        "speedup": round(busy / span, 2) if complete and span else None,
        "combined": _combined(connection, record) if complete else None,
        "failed_ids": failed_ids,
    }


def _fractions(connection: Redis, job_ids: list[str]) -> list[float]:
    """The progress each running job last reported (0 when it has not yet)."""
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
    if record.split <= 1:
        return None
    try:
        last = connection.lindex(batches.jobs_key(record.id), -1)
        result = load_job(connection, as_text(last)).return_value() if last is not None else None
    except Exception:  # noqa: BLE001 - gone, unreadable (its key forged) or not finished: no figures to show
        return None
    return result if isinstance(result, dict) else None


def recent(connection: Redis, limit: int = 20) -> list[dict[str, Any]]:
    """The newest batches with their summaries, newest first."""
    found = []
    for record in batches.recent(connection, limit):
        summed = summary(connection, record)
        summed.pop("failed_ids")
        found.append(summed)
    return found


def detail(connection: Redis, batch_id: str, page: int, per_page: int) -> dict[str, Any] | None:
    """The batch page's data: summary, its failed jobs with errors, one page of its jobs."""
    record = batches.load(connection, batch_id)
    if record is None:
        return None
    data = summary(connection, record)
    ids = list(record.job_ids)
    data["failures"] = read_rows(connection, data.pop("failed_ids"))
    data["jobs"] = read_rows(connection, ids[(page - 1) * per_page : page * per_page])
    data["page"] = page
    data["per_page"] = per_page
    data["pages"] = max(1, -(-len(ids) // per_page))
    return data
