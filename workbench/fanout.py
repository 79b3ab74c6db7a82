"""Fan-out: one `count_primes` range split into N chunk jobs plus a combining job that sums them.

The combining job depends on every chunk through RQ's own dependencies (`Dependency(...,
allow_failure=True)`), so RQ enqueues it when the last chunk ends, and it reports a failed chunk
as its own one-sentence error instead of waiting forever. Chunks and combiner go in one MULTI/EXEC
transaction: the whole fan-out is queued, or nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq.job import Dependency, Job, JobStatus

from . import defaults, validators
from .catalog import TaskSpec
from .durability import Confirmation
from .errors import UsageError
from .jobs import make_queue
from .producer import Batch, broker_errors, job_data, maybe_queued, record_batch, transaction

#: The catalog name of the combining task (task_def/combine.py).
COMBINE_TASK = "combine_counts"
#: Parameters a task needs to be split: the half-open range [start, limit).
RANGE_PARAMS = ("start", "limit")


def splittable(spec: TaskSpec) -> bool:
    """Whether a task takes a [start, limit) range that can be cut into chunks."""
    names = {param.name for param in spec.params}
    return all(name in names for name in RANGE_PARAMS)


def split_count(raw: object) -> int:
    """How many chunks: 1 (no split) to MAX_SPLIT."""
    return validators.whole_number(raw, "split", 1, defaults.MAX_SPLIT)


def check_split(batch: Batch, parts: int) -> None:
    """Refuse a split that cannot work, with one sentence, before anything is enqueued."""
    if parts == 1:
        return
    if not splittable(batch.spec):
        raise UsageError(f"--split needs a task with a start..limit range (count_primes), not {batch.spec.name}.")
    if batch.count != 1:
        raise UsageError("--split and --count cannot be combined: a split runs one range as several chunks.")
    start, limit = batch.params["start"], batch.params["limit"]
    if limit - start < parts:
        raise UsageError(f"the range {start:,}..{limit:,} is too small to split into {parts} chunks.")


def split_range(start: int, limit: int, parts: int) -> list[tuple[int, int]]:
    """Cut [start, limit) into `parts` contiguous, non-empty chunks of near-equal width."""
    width, extra = divmod(limit - start, parts)
    chunks, low = [], start
    for index in range(parts):
        high = low + width + (1 if index < extra else 0)
        chunks.append((low, high))
        low = high
    return chunks


@dataclass(frozen=True)
class FanOut:
    """The chunk jobs and the job that combines them."""

    chunks: list[Job]
    combine: Job
    #: What the broker confirmed about the transaction (`workbench.durability`).
    confirmation: Confirmation | None = None

    @property
    def jobs(self) -> list[Job]:
        return [*self.chunks, self.combine]


def enqueue_split(connection: Redis, batch: Batch, parts: int, combine_spec: TaskSpec) -> FanOut:
    """Enqueue `parts` chunk jobs and a deferred combining job in one transaction."""
    queue = make_queue(batch.queue, connection)
    ranges = split_range(batch.params["start"], batch.params["limit"], parts)
    data = [job_data(queue, batch, {**batch.params, "start": low, "limit": high}) for low, high in ranges]
    with broker_errors(connection, "enqueueing; nothing was queued"):
        with transaction(connection) as pipe:
            chunks = queue.enqueue_many(data, pipeline=pipe)
            combine = queue.create_job(
                combine_spec.func_path,
                kwargs={},
                timeout=combine_spec.timeout_s,
                result_ttl=defaults.RESULT_TTL_S,
                failure_ttl=defaults.FAILURE_TTL_S,
                description=f"{combine_spec.name}({batch.description} in {parts} chunks)",
                depends_on=Dependency(jobs=[job.id for job in chunks], allow_failure=True),
                status=JobStatus.DEFERRED,
                meta={"task": combine_spec.name, "batch": batch.batch_id},
            )
            # What Queue.enqueue does for a job with unmet dependencies, but inside our transaction:
            # the chunks are brand new, so the combiner's dependencies cannot be met yet.
            combine.save(pipeline=pipe)
            combine.register_dependency(pipeline=pipe)
            record_batch(pipe, batch, [*(job.id for job in chunks), combine.id], split=parts)
            with maybe_queued(connection, batch.batch_id):
                pipe.execute()
    return FanOut(chunks, combine, pipe.confirmation)
