"""The worker's per-job path, lean: take, run and end a short job in two broker round trips.

RQ's SimpleWorker spends about 60 broker commands and a dozen round trips on a no-op job. Here:

- **take** (`take_ready`): one script pops the next job into the queue's intermediate list, reads
  it and claims its run (`workbench.guarded.TAKE`); RQ's blocking dequeue is used only when every
  queue is empty, and its job is then claimed as before (`WorkbenchWorker._claim`);
- **start**: nothing is written when the run starts; the start records (RQ's execution, the started
  registry, the worker's busy state, the job's `started_at`) are written by a thread once the run
  has lasted START_RECORD_DELAY_S (`workbench.deferred_start`);
- **end**: a successful run that never had its start written ends in ONE guarded script
  (`end_lean`: RQ's own `_handle_success`, `Result.create`, finished registry and TTLs, the
  statistics, the run-generation guard; `workbench.guarded.GuardedPipeline`). Every other end
  (failure, retry, stop, a job with dependents, a repeat, a rate limit, a result TTL of 0, a run
  whose start was written) goes through RQ's own finishing path, unchanged but for the guard;
- what RQ repeats per job without need is not sent: the worker's state when it did not change,
  the job's last heartbeat before the end writes it anyway; its counters
  (`successful_job_count`, `total_working_time`) ride on the throttled worker heartbeat.

Every method takes the job it works on as an argument, so a worker running several jobs at once
can reuse them per job.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, FieldT
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import now, utcformat
from rq.worker import WorkerStatus

from . import defaults, fencing, stats
from .deferred_start import DeferredStarts
from .guarded import TAKE, GuardedPipeline, Refused
from .jobs import CatalogJob
from .recovery import quarantine

if TYPE_CHECKING:
    from .durable_runs import DurableRuns

    # What the mixin is mixed into (workbench.worker.WorkbenchWorker(LeanPath, DurableRuns, SimpleWorker)):
    # to the type checker it IS DurableRuns on RQ's worker, so `self` and `super()` have their methods.
    _Worker = DurableRuns
else:
    _Worker = object


class LeanExecution(Execution):
    """RQ's Execution of a run on the lean path, knowing whether its start records were written yet."""

    #: False until the deferred start wrote RQ's start records (execution, started registry...).
    workbench_started: bool = False


class LeanPath(_Worker):
    """Mixed into the worker before DurableRuns and RQ's SimpleWorker (see the module docstring)."""

    def _lean_init(self) -> None:
        self._state_written: str | None = None
        self._starts: DeferredStarts | None = None
        #: Counters not yet written: successful jobs and their working time (sent with the heartbeat).
        self._unsent_successes = 0
        self._unsent_working_s = 0.0

    def _start_deferred_starts(self) -> None:
        self._starts = DeferredStarts(defaults.START_RECORD_DELAY_S, self._write_start, name=f"starts {self.name}")
        self._starts.start()

    def _stop_deferred_starts(self) -> None:
        if self._starts is not None:
            self._starts.stop()

    # -- take ---------------------------------------------------------------------------
    def take_ready(self) -> tuple[CatalogJob, Queue] | None:
        """Take, read and claim the next queued job in one script; None when every queue is empty."""
        queues = list(self._ordered_queues)
        keys = [queue.key for queue in queues]
        args = [self.name, fencing.GENERATION_FIELD, self.job_class.redis_job_namespace_prefix]
        while True:
            reply = self._take_reply(keys, args)
            if reply is None:
                return None
            index, raw_id, generation, data = reply
            queue, job_id = queues[int(index) - 1], raw_id.decode()
            if int(generation) == -1:
                continue  # its record is gone: RQ skips such an id too
            if int(generation) == -2:
                why = data[0].decode(errors="replace") if data else "unreadable"
                self._quarantine(queue, job_id, f"malformed job record ({why})")
                continue
            if int(generation) == 0:
                status = data[0].decode(errors="replace") if data else "gone"
                self.log.info("Worker %s: job %s is %s already; not running it", self.name, job_id, status)
                continue
            fields = dict(zip(data[::2], data[1::2], strict=False))
            job = self.job_class(job_id, connection=self.connection, serializer=self.serializer)
            assert isinstance(job, CatalogJob)  # the worker's job class (workbench.worker)
            try:
                job.restore(fields)
            except Exception as exc:  # noqa: BLE001 - an unloadable record is parked, as the dequeue path does
                self._quarantine(queue, job_id, f"malformed job record ({type(exc).__name__}: {exc})")
                continue
            job._status, job.worker_name = JobStatus.STARTED, self.name
            job.run_generation = int(generation)
            job.workbench_taken = True
            job.redis_server_version = self.get_redis_server_version()
            self.reorder_queues(reference_queue=queue)
            if self.log_job_description:  # as RQ's dequeue logs it (the consumer's log shows it inertly)
                self.log.info("Worker %s: %s: %s (%s)", self.name, queue.name, job.description, job_id)
            else:
                self.log.info("Worker %s: %s: %s", self.name, queue.name, job_id)
            return job, queue

    def _quarantine(self, queue: Queue, job_id: str, reason: str) -> None:
        reason = reason[: defaults.QUARANTINE_REASON_CHARS]
        self.log.warning("Worker %s: quarantined job %s as failed: %s", self.name, job_id, reason)
        quarantine(self.connection, queue.name, job_id, reason)

    def _take_reply(self, keys: list[str], args: list[Any]) -> Any:
        replicas = self.replicas
        replicas.refresh(self.connection)
        for _ in range(2):
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.evalsha(TAKE.sha, len(keys), *keys, *args)
                if replicas.count:
                    pipe.execute_command("WAIT", 1, max(int(defaults.RUN_CONFIRM_TIMEOUT_S * 1000), 1))
                replies = pipe.execute(raise_on_error=False)
            if not isinstance(replies[0], NoScriptError):
                break
            self.connection.script_load(TAKE.script)
        if isinstance(replies[0], Exception):
            raise replies[0]
        if replicas.count and replies[0] is not None and not replies[-1]:
            self.log.warning(
                "Worker %s: no replica confirmed the start of a job within %g s; running it anyway",
                self.name, defaults.RUN_CONFIRM_TIMEOUT_S,
            )  # fmt: skip
        return replies[0]

    # -- start --------------------------------------------------------------------------
    def prepare_execution(self, job: Job) -> LeanExecution:
        """RQ writes the start here; the lean path only schedules it (module docstring)."""
        execution = LeanExecution(id=uuid.uuid4().hex, job_id=job.id, connection=self.connection, worker_name=self.name)
        execution._job = job
        self.executions[execution.id] = execution
        self._state = WorkerStatus.BUSY  # in this process; written with the start records
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        job.worker_name, job._status = self.name, JobStatus.STARTED
        job.last_heartbeat = now()
        if self._starts is not None:
            self._starts.begin(job.id, (job, self.execution_of(job)))

    def execution_of(self, job: Job) -> Execution | None:
        for execution in self.executions.values():
            if execution.job_id == job.id:
                return execution
        return None

    def _write_start(self, run: tuple[Job, Execution]) -> bool:
        """RQ's start records of a run that lasts, guarded by its generation (called by DeferredStarts)."""
        job, execution = run
        ttl = self.get_heartbeat_ttl(job)
        generation = getattr(job, "run_generation", None)
        pipe = GuardedPipeline(self.connection, job.key, generation, (fencing.GENERATION_FIELD, fencing.ENDED_FIELD))
        execution.save(ttl=ttl, pipeline=pipe)
        ExecutionRegistry(job_id=job.id, connection=pipe).add(execution=execution, ttl=ttl, pipeline=pipe)
        job.started_job_registry.add_execution(execution, pipeline=pipe, ttl=ttl, xx=False)
        pipe.sadd(execution.worker_executions_key, execution.composite_key)
        pipe.expire(execution.worker_executions_key, ttl + 60)
        pipe.hset(self.key, mapping={"state": WorkerStatus.BUSY, "last_heartbeat": utcformat(now())})
        started: dict[FieldT, EncodableT] = {
            "status": JobStatus.STARTED,
            "worker_name": self.name,
            "last_heartbeat": utcformat(now()),
        }
        if job.started_at:
            started["started_at"] = utcformat(job.started_at)
        pipe.hset(job.key, mapping=started)
        pipe.persist(job.key)
        pipe.lrem(f"{self._queue_key(job.origin)}:intermediate", 1, job.id)
        try:
            pipe.execute()
        except Refused as exc:
            self.log.info("Worker %s: start of job %s not recorded (%s)", self.name, job.id, exc.reason)
            return False
        except (redis.RedisError, OSError) as exc:
            self.log.warning("Worker %s: could not record the start of job %s: %s", self.name, job.id, exc)
            return False
        if isinstance(execution, LeanExecution):
            execution.workbench_started = True
        self._state_written = WorkerStatus.BUSY
        return True

    def _queue_key(self, name: str) -> str:
        return f"{self.queue_class.redis_queue_namespace_prefix}{name}"

    def settle_start(self, job: Job, execution: Execution | None) -> bool:
        """The run ends: cancel its start write if still pending. True if its start records exist."""
        started = self._starts.settle(job.id) if self._starts is not None else True
        if isinstance(execution, LeanExecution):
            execution.workbench_started = started or execution.workbench_started
            return execution.workbench_started
        return started

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        # RQ writes the job's last_heartbeat here, one round trip; the end's own write carries it.
        job.ended_at = now()
        job.last_heartbeat = job.ended_at

    def cleanup_execution(self, job: Job, pipeline: Pipeline, execution: Execution | None = None) -> None:
        """RQ's removal of the start records, inside every finishing transaction; none to remove if never written."""
        if isinstance(execution, LeanExecution) and not execution.workbench_started:
            fencing.guard(pipeline, job.id, self._generation(job.id))
            self.executions.pop(execution.id, None)
            pipeline.lrem(f"{self._queue_key(job.origin)}:intermediate", 1, job.id)
            return
        super().cleanup_execution(job, pipeline, execution)

    # -- end ------------------------------------------------------------------------------
    def lean_end_allowed(self, job: Job) -> bool:
        """Whether a successful run may end by `end_lean` (else RQ's own path, module docstring)."""
        if job.repeats_left or job.rate_limit_key:
            return False
        return job.get_result_ttl(self.default_result_ttl) != 0

    def end_lean(self, job: Job, queue: Queue, execution: Execution, generation: int | None) -> bool:
        """Write a successful run's end in one guarded script. False: it has dependents (use RQ's path).

        Raises fencing.Superseded / fencing.AlreadyRecorded as the guard of RQ's path does.
        """
        fields = (fencing.GENERATION_FIELD, fencing.ENDED_FIELD)
        pipe = GuardedPipeline(self.connection, job.key, generation, fields, dependents_key=job.dependents_key)
        pipe.absent.add(job.dependents_key)  # the guard refuses when it has members
        if not job._dependency_ids:
            pipe.absent.add(job.dependencies_key)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        if generation is not None:  # first: RQ's own writes of the job hash follow and merge with it
            pipe.hset(job.key, fencing.ENDED_FIELD, generation)
        job._handle_success(
            result_ttl,
            pipeline=pipe,
            worker_name=self.name,
            execution_id=execution.id,
            execution_started_at=execution.created_at,
            execution_ended_at=job.ended_at,
        )
        job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
        pipe.lrem(queue.intermediate_queue_key, 1, job.id)
        stats.record_job_end(pipe, job, stats.FINISHED)
        try:
            pipe.execute()
        except Refused as exc:
            if exc.reason == "dependents":
                return False
            if exc.reason == "superseded":
                raise fencing.Superseded(job.id, generation or 0, exc.current) from None
            raise fencing.AlreadyRecorded(f"job {job.id}: the end of run {generation} is recorded already") from None
        job._status = JobStatus.FINISHED
        self.executions.pop(execution.id, None)
        self._unsent_successes += 1
        if job.started_at and job.ended_at:
            self._unsent_working_s += (job.ended_at - job.started_at) / timedelta(seconds=1)
        self.log.info("Worker %s: %s: Job OK (%s)", self.name, job.origin, job.id)
        return True

    # -- what RQ repeats per job ----------------------------------------------------------
    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ's state write, skipped when the broker has it already (RQ writes `idle` before every dequeue)."""
        self._state = state
        if pipeline is not None:
            pipeline.hset(self.key, "state", state)
            self._state_written = None  # not known until that pipeline runs
            return
        if state == self._state_written:
            return
        try:
            self.connection.hset(self.key, "state", state)
            self._state_written = state
        except (redis.ConnectionError, redis.TimeoutError):
            self._state_written = None  # written with the next one

    def queue_unsent_counters(self, pipe: Pipeline) -> None:
        """Add the counters of lean ends not yet written (RQ's `successful_job_count`...) to `pipe`."""
        if self._unsent_successes:
            pipe.hincrby(self.key, "successful_job_count", self._unsent_successes)
            pipe.hincrbyfloat(self.key, "total_working_time", self._unsent_working_s)
            self._unsent_successes, self._unsent_working_s = 0, 0.0

    def flush_counters(self) -> None:
        if not self._unsent_successes:
            return
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                self.queue_unsent_counters(pipe)
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    def suspension_due(self) -> bool:
        """Whether to ask the broker about `rq suspend` now: at most every SUSPENSION_CHECK_S while busy."""
        moment = time.monotonic()
        if moment - getattr(self, "_suspension_checked", 0.0) < defaults.SUSPENSION_CHECK_S:
            return False
        self._suspension_checked = moment
        return True
