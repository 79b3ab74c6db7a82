"""The workbench's RQ worker: no fork per job, catalog-only jobs, and a clear account of why it exits.

It is RQ's SimpleWorker (a job runs in the worker process itself, so a no-op job costs a few
Redis round trips instead of a fork) with the stop semantics the consumer and kill_thread rely on:

- SIGINT, or RQ's `shutdown` command: warm stop, the current job finishes first;
- SIGTERM: cold stop, the current job ends at once as "stopped by user" (failed, or re-queued
  when it has retries left);
- SIGHUP (sent by the kernel when the supervising consumer dies, see `workbench.pool`): the same
  cold stop, with the reason "its consumer exited";
- RQ's `kill-horse` command, or `stop-job` for the current job: that job ends the same way and
  the worker carries on.

The process exit code says why it ended; see the EXIT_* constants.

Beyond plain SimpleWorker: a heartbeat thread keeps a short-lived liveness key fresh even during
a long job (`workbench.heartbeat`), which any consumer's janitor uses to recover the jobs of a dead
worker; an unloadable job record is quarantined as failed instead of ending the worker; RQ's
maintenance survives such records; the reconnect back-off is capped so a worker is back within
seconds of a broker outage.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any, cast

import redis
from redis.client import Pipeline, PubSubWorkerThread
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job, JobStatus, Retry
from rq.queue import Queue
from rq.registry import StartedJobRegistry, clean_registries
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus
from rq.worker_registration import clean_worker_registry

from . import defaults, durability, fencing, stats
from .broker import client as broker_client
from .durable_runs import DurableRuns
from .heartbeat import Heartbeat
from .jobs import SERIALIZER, TASK_RUNNING, CatalogJob
from .lean_path import LeanPath
from .recovery import quarantine

#: Exit codes of a worker process, read by the supervisor.
EXIT_DONE = 0  # stopped as asked, burst queues drained, or --max-jobs reached
EXIT_COMMANDED = 3  # stopped by RQ's shutdown command (kill_thread): must not be respawned
EXIT_CRASHED = 70  # the work loop ended for no requested reason: respawn
EXIT_FENCED = defaults.EXIT_FENCED  # its lease ran out and its job did not stop in time: exited hard; respawn

#: Internal signal the pubsub thread uses to interrupt the job running in the main thread.
STOP_JOB_SIGNAL = signal.SIGUSR1
#: Sent by the kernel to a worker whose consumer died (PR_SET_PDEATHSIG).
ORPHANED_SIGNAL = signal.SIGHUP


class JobStopped(Exception):
    """Raised inside a running job when a person stopped it (kill_thread or a cold stop)."""


def worker_name(slot: int, token: str) -> str:
    """A readable, unique worker name: host, slot number and a short random token."""
    host = socket.gethostname().split(".")[0][:20] or "host"
    return f"{host}.w{slot}.{token}"


class WorkbenchWorker(LeanPath, DurableRuns, SimpleWorker):
    """SimpleWorker running CatalogJobs, JSON-serialised, with explicit stop semantics."""

    job_class = CatalogJob
    max_connection_wait_time = defaults.MAX_RECONNECT_WAIT_S

    def __init__(self, *args: Any, broker_url: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        kwargs.setdefault("job_class", CatalogJob)
        super().__init__(*args, **kwargs)
        self.exit_code = EXIT_CRASHED
        self._stop_reason = ""
        self._drained = False
        self._jobs_done = 0
        self._looping = False  # stop signals may raise only once the work loop can catch them
        self._job_stop_reason = ""
        self._reconnect_wait = 1.0
        self._last_beat = 0.0
        self.beats: Heartbeat | None = None
        self.broker_url = broker_url  # the heartbeat opens its own short-timeout connection to it
        self._ending = threading.local()  # .job: the job whose end is being recorded (statistics)
        #: The broker's replicas as last heard: runs are confirmed on one when there is one (see fencing).
        self.replicas = durability.Replicas()
        self._lean_init()

    @property
    def dequeue_timeout(self) -> int:
        # RQ blocks 405 s; a worker whose link died would be handed jobs that long (see defaults).
        return defaults.DEQUEUE_TIMEOUT_S

    # -- stop requests ---------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self._cold_stop)
        signal.signal(ORPHANED_SIGNAL, self._orphaned)
        signal.signal(STOP_JOB_SIGNAL, self._stop_current_job)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.exit_code = EXIT_COMMANDED if self._stop_reason == "command" else EXIT_DONE
        self._stop_requested = True  # also holds if RQ's StopRequested is raised somewhere that swallows it
        if not self._looping:
            return  # still starting: the loop stops before its first job
        try:
            super().request_stop(signum, frame)
        finally:
            # RQ turns the next SIGINT into a cold stop; here only SIGTERM means cold.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, self._cold_stop)

    def _cold_stop(self, signum: int, frame: FrameType | None, reason: str = "stopped by user (cold shutdown)") -> None:
        if self.exit_code == EXIT_CRASHED:
            self.exit_code = EXIT_DONE
        self._stop_requested = True
        if TASK_RUNNING.is_set():
            raise JobStopped(reason)
        if self._looping and self.get_state() != WorkerStatus.BUSY:
            raise SystemExit(self.exit_code)
        if self.get_state() == WorkerStatus.BUSY:
            # Between taking the job and entering the task: stop it as soon as the task begins.
            self._job_stop_reason = reason
            threading.Thread(target=self._stop_when_task_starts, daemon=True).start()

    def _stop_when_task_starts(self) -> None:
        while self.get_state() == WorkerStatus.BUSY:
            if TASK_RUNNING.wait(0.01):
                os.kill(os.getpid(), STOP_JOB_SIGNAL)
                return

    def _orphaned(self, signum: int, frame: FrameType | None) -> None:
        # Linux sends the parent-death signal each time the worker is reparented: once per thread of a
        # dying consumer (its scheduler thread, see workbench.schedules). Act on the first one only, or
        # a second one would interrupt the teardown and leave the worker registered after its exit.
        signal.signal(ORPHANED_SIGNAL, signal.SIG_IGN)
        self._cold_stop(signum, frame, reason="stopped: the consumer supervising this worker exited")

    def _stop_current_job(self, signum: int, frame: FrameType | None) -> None:
        if TASK_RUNNING.is_set():
            raise JobStopped(self._job_stop_reason or "stopped by user")

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's hook for stopping the running job; here the job runs in this process."""
        if TASK_RUNNING.is_set():
            os.kill(os.getpid(), STOP_JOB_SIGNAL)

    def stop_running_jobs(self, reason: str) -> None:
        """Stop every job this worker runs now, with `reason` (the fence calls it when the lease runs out).

        Each job ends like a stopped one (failed with the reason, or re-queued when it has retries);
        the worker carries on. A job still between dequeue and its task is stopped as its task begins.
        """
        self._job_stop_reason = reason
        if TASK_RUNNING.is_set():
            os.kill(os.getpid(), STOP_JOB_SIGNAL)
        elif self.get_state() == WorkerStatus.BUSY:
            threading.Thread(target=self._stop_when_task_starts, daemon=True).start()

    def tasks_running(self) -> bool:
        """Whether any job's task code is running in this process now."""
        return TASK_RUNNING.is_set()

    @property
    def horse_pid(self) -> int:
        # RQ's kill-horse command only acts when there is a horse; ours is "the running job".
        return os.getpid() if TASK_RUNNING.is_set() else 0

    def handle_payload(self, message: dict[str, Any]) -> None:
        try:
            command = json.loads(message["data"]).get("command")
        except (ValueError, TypeError, AttributeError):
            self.log.warning("Worker %s: ignored an unreadable command", self.name)
            return
        if command == "shutdown":
            self._stop_reason = "command"
        super().handle_payload(message)

    # -- liveness ---------------------------------------------------------------------
    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        # Handlers first: a stop (a shutdown command, Ctrl-C) that arrives while the worker is
        # registering must still be honoured, and must not leave a registered ghost behind.
        self._install_signal_handlers()
        super().bootstrap(*args, **kwargs)
        self.beats = Heartbeat(self, connection=self._beat_connection())
        self.beats.start()
        self._start_deferred_starts()
        self._looping = True

    def _beat_connection(self) -> redis.Redis | None:
        if not self.broker_url:
            return None
        timeout = fencing.timings().beat_timeout
        return broker_client(self.broker_url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def teardown(self) -> None:
        if self.beats is not None:
            self.beats.stop()  # first, so no beat re-registers the worker after its death
        self._stop_deferred_starts()
        self.flush_counters()
        super().teardown()

    # -- riding out broker outages ------------------------------------------------------
    # RQ retries only the dequeue itself; a broker that vanishes during start-up maintenance, a
    # suspension check or a heartbeat ends the work loop. Here those steps wait for it instead.
    def _broker_away(self, exc: Exception) -> None:
        self.log.error("Worker %s: broker unreachable (%s); retrying in %d s", self.name, exc, self._reconnect_wait)
        self.replicas.forget()  # perhaps another primary when it answers again, with other replicas
        time.sleep(self._reconnect_wait)
        self._reconnect_wait = min(self._reconnect_wait * 2, defaults.MAX_RECONNECT_WAIT_S)

    def check_for_suspension(self, burst: bool) -> None:
        if not self.suspension_due():
            return
        try:
            super().check_for_suspension(burst)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._broker_away(exc)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._broker_away(exc)

    def unsubscribe(self) -> None:
        """RQ's order (unsubscribe, then stop the listener) lets the listener go back to a 60 s wait,
        so every other stop waited out the full 1 s join; stopping the listener first avoids that."""
        thread = cast("PubSubWorkerThread | None", self.pubsub_thread)  # RQ's __init__ types it as None
        if thread is not None and self.pubsub is not None:
            thread.stop()
            self.pubsub.unsubscribe()
            thread.join(timeout=1)
            self.pubsub.close()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        # RQ beats 3 times per job (3 round trips each) to extend a TTL of minutes; once a second
        # is plenty, and liveness proper comes from the heartbeat thread.
        if timeout is None and pipeline is None and time.monotonic() - self._last_beat < defaults.HEARTBEAT_THROTTLE_S:
            return
        self._last_beat = time.monotonic()
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        try:
            with self.connection.pipeline(transaction=False) as pipe:  # RQ sends its three commands one by one
                super().heartbeat(timeout, pipe)
                self.queue_unsent_counters(pipe)
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the next dequeue attempt meets the outage and backs off; the heartbeat thread re-registers

    # -- running jobs ---------------------------------------------------------------
    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        fence = self.beats.fence if self.beats is not None else None
        if fence is None or fence.holds_lease:  # else: the slow path, whose claim beats first
            try:
                taken = self.take_ready()
            except (redis.ConnectionError, redis.TimeoutError):
                taken = None  # RQ's dequeue below meets the outage and waits for the broker
            if taken is not None:
                self._drained = False
                self._reconnect_wait = 1.0
                return taken
        while True:
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._broker_away(exc)  # e.g. while marking itself idle, before RQ's own retry loop
                continue
            except (StopRequested, JobStopped):
                raise
            except Exception as exc:
                job_id, queue = getattr(exc, "job_id", None), getattr(exc, "queue", None)
                if job_id is None or queue is None:
                    raise
                reason = f"malformed job record ({type(exc).__name__}: {exc})"[: defaults.QUARANTINE_REASON_CHARS]
                self.log.warning("Worker %s: quarantined job %s as failed: %s", self.name, job_id, reason)
                quarantine(self.connection, queue.name, job_id, reason)
                continue
            self._drained = result is None
            self._reconnect_wait = 1.0
            return result

    def clean_registries(self) -> None:
        """RQ's maintenance, made to survive one bad queue instead of leaking its 899 s lock."""
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue
            try:
                clean_registries(queue, self._exc_handlers)
                clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)
            except (redis.ConnectionError, redis.TimeoutError, StopRequested, JobStopped):
                raise
            except Exception as exc:  # noqa: BLE001 - a bad record must not stop the worker; the janitor parks it
                self.log.warning("Worker %s: maintenance of %s skipped: %s", self.name, queue.name, exc)
            finally:
                queue.release_maintenance_lock()
        self.last_cleaned_at = now()  # type: ignore[assignment]  # RQ's __init__ types it as None

    def execute_job(self, job: Job, queue: Queue) -> None:
        assert isinstance(job, CatalogJob)  # this worker's job class
        fence = self.beats.fence if self.beats is not None else None
        generation = self._claim(job, queue, fence)
        if generation is None:
            return
        if self.beats is not None:
            timeout = job.timeout or defaults.DEFAULT_JOB_TIMEOUT_S
            self.beats.job = (job.id, time.time() + timeout if timeout > 0 else None)
        try:
            super().execute_job(job, queue)
        finally:
            if self.beats is not None:
                self.beats.job = None
            if fence is not None:
                fence.generations.pop(job.id, None)
                fence.fenced_jobs.discard(job.id)
            self._job_stop_reason = ""
        self._jobs_done += 1

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        self._ending.job = job
        self._before_finishing(job)
        started = self.settle_start(job, execution)
        if not started and execution is not None and self.lean_end_allowed(job):
            ended: list[bool] = []
            generation = self._generation(job.id)
            self._finish(job, lambda: ended.append(self.end_lean(job, queue, execution, generation)))
            if not ended or ended[-1]:
                return  # written (or superseded, or recorded before): done

        def write() -> None:  # super() names its class here: the function has no `self` of its own
            super(WorkbenchWorker, self).handle_job_success(job, queue, started_job_registry, execution)

        self._finish(job, write)

    def handle_job_retry(
        self, job: Job, queue: Queue, retry: Retry, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        self.settle_start(job, execution)
        super().handle_job_retry(job, queue, retry, started_job_registry, execution)

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: StartedJobRegistry | None = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        self._ending.job = job
        self.settle_start(job, execution)
        fenced = self._before_finishing(job)

        def write() -> None:  # super() names its class here: the function has no `self` of its own
            super(WorkbenchWorker, self).handle_job_failure(job, queue, started_job_registry, exc_string, execution)

        # RQ logs and swallows a failure it could not write: always look whether it was written.
        if self._finish(job, write, verify=True) and fenced:
            self.log.warning(
                "Worker %s: job %s, stopped when its lease ran out, was failed or re-queued", self.name, job.id
            )

    # -- statistics (workbench.stats): RQ calls these inside the transaction recording a job's end ----
    def increment_successful_job_count(self, pipeline: Pipeline | None = None) -> None:
        super().increment_successful_job_count(pipeline)
        job = getattr(self._ending, "job", None)
        if job is not None:
            stats.record_job_end(pipeline if pipeline is not None else self.connection, job, stats.FINISHED)

    def increment_failed_job_count(self, pipeline: Pipeline | None = None) -> None:
        super().increment_failed_job_count(pipeline)
        job = getattr(self._ending, "job", None)
        if job is not None:
            # RQ has already marked a stopped job STOPPED; a job with retries left is about to be re-queued.
            stopped = job.get_status(refresh=False) == JobStatus.STOPPED
            outcome = stats.STOPPED if stopped else stats.RETRIED if job.should_retry else stats.FAILED
            stats.record_job_end(pipeline if pipeline is not None else self.connection, job, outcome)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Run RQ's work loop (its parameters, `max_jobs` by keyword), then set `exit_code` to why it ended."""
        max_jobs: int | None = kwargs.get("max_jobs")
        try:
            worked = super().work(*args, **kwargs)
        except StopRequested:  # a stop between start-up and the loop's first turn
            self.teardown()
            worked = False
        quota_met = max_jobs is not None and self._jobs_done >= max_jobs
        if self.exit_code == EXIT_CRASHED and (self._drained or quota_met):
            self.exit_code = EXIT_DONE
        return worked
