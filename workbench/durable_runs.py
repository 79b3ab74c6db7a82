"""A run's start and end survive a broker outage or a failover (issue 14), as a worker mixin.

RQ's SimpleWorker treats a lost broker in the middle of a run as fatal: the work loop ends
("unhandled exception") and the job is later failed as abandoned, though it ran fine. A failover
(the primary lost, a replica promoted by the sentinels within seconds) is exactly such a moment.
Here every broker step of a run waits for the broker and is made again:

- the start records (RQ's execution and started-registry entry, status "started") are one
  transaction that only sets what it set before, so it is simply sent again;
- the end (RQ's finishing transaction, guarded by the run generation, `workbench.fencing`) is
  written again once the broker is back: the guard answers AlreadyRecorded when the first write
  survived, writes it when it was lost (asynchronous replication may lose the last writes on
  promotion), and refuses it when a recovery superseded the run meanwhile;
- with a replica attached, each end is confirmed on a replica (WAIT) and read back before the
  worker moves on, so a failover right after it keeps it.

The claim of a run (`_claim`, below) rides out the same way and is confirmed on a replica
in its own round trip, so a run whose claim a failover lost is never handed to a second worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from redis.client import Pipeline
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job, Retry
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.utils import now, utcformat

from . import defaults, durability, fencing
from .heartbeat import wait_for_broker
from .jobs import CatalogJob

if TYPE_CHECKING:
    from rq.worker import SimpleWorker

    from .heartbeat import Heartbeat

    # What the mixin is mixed into (workbench.worker.WorkbenchWorker(..., DurableRuns, SimpleWorker)):
    # to the type checker it IS that worker, so `self` and `super()` have RQ's attributes and methods.
    _Worker = SimpleWorker
else:
    _Worker = object


class DurableRuns(_Worker):
    """Mixed into the worker before RQ's SimpleWorker (see the module docstring)."""

    # Set by the worker's __init__ and bootstrap (workbench.worker).
    replicas: durability.Replicas
    beats: Heartbeat | None  # the worker's heartbeat thread (workbench.heartbeat), holding its fence

    def handle_job_retry(
        self, job: Job, queue: Queue, retry: Retry, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        def write() -> None:  # super() names its class here: the function has no `self` of its own
            super(DurableRuns, self).handle_job_retry(job, queue, retry, started_job_registry, execution)

        self._finish(job, write)

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        try:
            super().set_state(state, pipeline)
        except (redis.ConnectionError, redis.TimeoutError):
            if pipeline is not None:
                raise
            # RQ keeps the state in memory too; it is written again with the next one (its next dequeue).

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        try:
            super().handle_execution_ended(job, queue, heartbeat_ttl)
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # a heartbeat on the job hash; the end's own transaction follows and rides out the outage

    # -- riding out a broker outage or a failover, from a run's start to its end -----------------------
    def _await_broker(self, exc: Exception) -> None:
        """The broker is away (restarting, failing over): wait until it answers, or stop if asked to."""
        self.log.error("Worker %s: broker unreachable (%s); waiting for it", self.name, exc)
        self.replicas.forget()  # perhaps another primary when it answers again, with other replicas
        if not wait_for_broker(self.connection, lambda: not self._stop_requested):
            raise StopRequested()

    def prepare_execution(self, job: Job) -> Execution:
        while True:
            try:
                return super().prepare_execution(job)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        while True:
            try:
                return super().prepare_job_execution(job, remove_from_intermediate_queue)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)  # the same transaction again: it only sets what it set before

    def _finish(self, job: Job, write: Callable[[], object], verify: bool = False) -> bool:
        """Write a run's end (`write`: RQ's finishing path, guarded by the run generation) and make it stick.

        A broker lost around the write (a restart, a failover) is waited for, and the end written again:
        the guard says whether the first write survived (AlreadyRecorded) or was lost. With a replica
        attached, or with `verify`, one round trip after the write reads back that it was recorded and
        confirms it on a replica (`fencing.settled`). Returns False when the run was superseded.
        """
        generation = self._generation(job.id)
        before = (job.retries_left, job._status, getattr(job, "repeats_left", None))
        for _attempt in range(defaults.FINISH_ATTEMPTS):
            job.retries_left, job._status = before[0], before[1]
            if before[2] is not None:
                job.repeats_left = before[2]
            try:
                write()
            except fencing.AlreadyRecorded:
                return True
            except fencing.Superseded as exc:
                self._superseded(exc)
                return False
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)
                continue
            if generation is None or not (verify or self.replicas.count or self.replicas.due()):
                return True
            try:
                touch = (self.key, "last_heartbeat", utcformat(now()))
                ended, current, acks = fencing.settled(self.connection, job.id, self.replicas, touch)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)  # then write it again: the guard knows whether it survived
                continue
            if current is not None and current > generation:
                self._superseded(fencing.Superseded(job.id, generation, current))
                return False
            if ended != generation:
                time.sleep(defaults.FINISH_RETRY_PAUSE_S)  # not written (RQ logged why): once more, after a pause
                continue
            if acks == 0:
                self.log.warning(
                    "Worker %s: no replica confirmed the end of job %s within %g s",
                    self.name, job.id, defaults.RUN_CONFIRM_TIMEOUT_S,
                )  # fmt: skip
            return True
        self.log.error("Worker %s: could not record the end of job %s; the janitor will recover it", self.name, job.id)
        return True

    # -- fencing (workbench.fencing): one run at a time, and no late result over a re-run's --------------
    def _claim(self, job: CatalogJob, queue: Queue, fence: fencing.Fence | None) -> int | None:
        """Start the run in the broker (generation +1), or refuse a job that is not queued any more."""
        if job.workbench_taken:  # claimed by the take script already (workbench.lean_path)
            if fence is not None and job.run_generation is not None:
                fence.generations[job.id] = job.run_generation
            return job.run_generation
        if fence is not None and not fence.holds_lease and self.beats is not None:
            try:
                self.beats.beat()  # a janitor must see this worker alive before it holds a job again
            except redis.RedisError:
                pass  # the claim below meets the same outage
        while True:
            try:
                generation, status, acks = fencing.claim_confirmed(
                    self.connection, job.id, self.name, self.replicas, defaults.RUN_CONFIRM_TIMEOUT_S
                )
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)  # then claim again: a claim that reached the broker is answered as ours
        if acks == 0:
            self.log.warning(
                "Worker %s: no replica confirmed the start of job %s within %g s; running it anyway",
                self.name, job.id, defaults.RUN_CONFIRM_TIMEOUT_S,
            )  # fmt: skip
        if generation is None:
            self.log.info("Worker %s: job %s is %s already; not running it", self.name, job.id, status)
            self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
            return None
        if fence is not None:
            fence.generations[job.id] = generation
        job.run_generation = generation  # issue 19: the job's checkpoint writes are fenced by this run's generation
        return generation

    def _generation(self, job_id: str) -> int | None:
        return self.beats.fence.generations.get(job_id) if self.beats is not None else None

    def cleanup_execution(self, job: Job, pipeline: Pipeline, execution: Execution | None = None) -> None:
        # RQ calls this inside every finishing transaction: refuse it if the job's run was superseded.
        fencing.guard(pipeline, job.id, self._generation(job.id))
        super().cleanup_execution(job, pipeline, execution)

    def _before_finishing(self, job: Job) -> bool:
        """For a job the fence stopped: wait until the broker is back, so its outcome is decided there."""
        fenced = self.beats is not None and job.id in self.beats.fence.fenced_jobs
        if fenced:
            wait_for_broker(self.connection, lambda: not self._stop_requested)
        return fenced

    def _superseded(self, exc: fencing.Superseded) -> None:
        self.log.warning(
            "Worker %s: job %s was recovered elsewhere while this worker could not reach the broker "
            "(run %s, now %s); this run's late outcome was not written",
            self.name,
            exc.job_id,
            exc.mine,
            exc.current,
        )
