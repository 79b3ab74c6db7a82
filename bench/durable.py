"""What "queued means on disk" costs: the producer's batch confirmed (WAITAOF after EXEC) against the same
batch unconfirmed, both through the workbench's own enqueue, on the embedded broker (AOF everysec).

A batch is one transaction, so its confirmation is one fsync and one round trip, however many jobs it
holds: 10,000 jobs in one batch should cost next to nothing more; 100 batches of 100 pay it 100 times.
The table's "plain RQ" column holds the unconfirmed figure for these rows (ratio: confirmed ÷ unconfirmed).
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from workbench.producer import Batch, enqueue

from .sides import OURS, SLEEP, BenchError, Side, _spec, plain_queue

if TYPE_CHECKING:
    from .rows import Context  # (rows imports this module: the experiment's context is a type here only)

#: Jobs per batch in the many-batches row.
SMALL_BATCH = 100


def durable_enqueue(ctx: Context, side: Side) -> dict[str, float]:
    """Ours: confirmed; the other side: the same enqueue without confirmation (see the module docstring)."""
    confirm = side.key == OURS
    spec = _spec(SLEEP)
    params = spec.validate({"seconds": 0})
    count = ctx.sizes.enqueue_jobs
    figures = {}
    confirming: list[float] = []
    for key, batches, size in (("durable_one", 1, count), ("durable_many", max(count // SMALL_BATCH, 1), SMALL_BATCH)):
        queue = ctx.queue(key, side)
        started = time.perf_counter()
        for _ in range(batches):
            jobs = enqueue(ctx.conn, Batch(spec, params, queue=queue, count=size), confirm=confirm)
            if confirm and not (jobs.confirmation and jobs.confirmation.on_disk):
                raise BenchError(f"the broker did not confirm a batch on disk: {jobs.confirmation}.")
            if jobs.confirmation is not None:
                confirming.append(jobs.confirmation.seconds * 1000)
        elapsed = time.perf_counter() - started
        if plain_queue(queue, ctx.conn).count != batches * size:
            raise BenchError(f"{side.title} enqueued the wrong number of jobs on {queue}.")
        figures[key] = batches * size / elapsed
    # Ours only: the confirmation's own time per batch, after EXEC (the unconfirmed side spends none).
    figures["durable_ms"] = statistics.median(confirming) if confirming else 0.0
    return figures
