"""The `combine_counts` task: the last step of a split `count_primes` (see workbench/fanout.py).

It takes no parameters: what it combines are the jobs it depends on, recorded by RQ when the
producer enqueued the fan-out, so it cannot be pointed at anyone else's jobs.
"""

from __future__ import annotations

from datetime import datetime

from rq import get_current_job

from workbench.catalog import task


class CombineFailed(Exception):
    """Raised when the chunks cannot be combined; the message is the job's one-sentence error."""


@task(timeout=60, extra={"internal": True}, shown=("count", "chunks"))
def combine_counts() -> dict:
    """Sum the chunks of a split count_primes (enqueued by producer --split N).

    Also times the fan-out from the chunks' own start and end stamps.
    """
    job = get_current_job()
    ids = job.dependency_ids if job is not None else []
    if job is None or not ids:
        raise CombineFailed("combine_counts only runs as the last step of a split (producer --split N).")
    # The chunks are read with this job's own class and serializer (the worker's: JSON, capped, catalog-only).
    chunks = type(job).fetch_many(ids, connection=job.connection, serializer=job.serializer)
    rows: list[tuple[dict, datetime, datetime]] = []  # (result, started, ended) per chunk
    for chunk_id, chunk in zip(ids, chunks, strict=True):
        if chunk is None:
            raise CombineFailed(f"chunk {chunk_id} expired before it could be combined.")
        latest = chunk.latest_result()
        if chunk.get_status(refresh=False) != "finished" or latest is None or not isinstance(latest.return_value, dict):
            reason = (latest.exc_string or "").strip().splitlines()[-1:] if latest else []
            raise CombineFailed(f"chunk {chunk_id} did not finish ({reason[0] if reason else 'no result'}).")
        if chunk.started_at is None or chunk.ended_at is None:
            raise CombineFailed(f"chunk {chunk_id} finished without its start and end times.")
        rows.append((latest.return_value, chunk.started_at, chunk.ended_at))
    rows.sort(key=lambda row: row[0]["start"])
    for (before, _, _), (after, _, _) in zip(rows, rows[1:], strict=False):
        if before["limit"] != after["start"]:
            raise CombineFailed(f"the chunks leave a gap or overlap at {before['limit']:,}.")
    busy = sum((ended - started).total_seconds() for _, started, ended in rows)
    span = (max(ended for _, _, ended in rows) - min(started for _, started, _ in rows)).total_seconds()
    return {
        "start": rows[0][0]["start"],
        "limit": rows[-1][0]["limit"],
        "count": sum(result["count"] for result, _, _ in rows),
        "chunks": len(rows),
        "chunk_time_s": round(busy, 3),
        "span_s": round(span, 3),
        "speedup": round(busy / span, 2) if span > 0 else None,
    }
