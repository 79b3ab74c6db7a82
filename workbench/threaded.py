"""A worker that runs up to N jobs at once, one thread each (`consumer_main.py --threads N`).

Scraping a thousand slow pages waits on the network, not on the CPU: one process can wait for many
at once. This worker is the workbench's worker (`workbench.worker.WorkbenchWorker`: RQ's
SimpleWorker, fencing, durable runs, statistics, checkpoints) with its main thread doing RQ's work
loop (dequeue, maintenance, suspension, commands) and each job's whole run (the fenced claim, RQ's
execution, the task, the finishing transaction) in one of its N job threads (started as needed, then
kept; one deadline thread serves every job's timeout). So every job is what it is
on a one-job worker: its own RQ execution in the worker's execution set (`rq info`, the dashboard,
`list_workers.py`), its own status, result, statistics and progress.

- **CPU-bound jobs run alone.** Only tasks marked `@task(io_bound=True)` (`sleep`, `scrape`) share a
  worker. A CPU-bound job (the maths) dequeued while other jobs run is handed back to the front of
  its queue (still queued, in its place), and the worker takes nothing more until its running jobs
  have ended; then it takes the next job, runs it alone if it is CPU-bound, and threads never
  contend for the GIL over computation.
- **Timeouts** are per job: a timer raises RQ's JobTimeoutException inside that job's task
  (`ThreadDeathPenalty`, through `workbench.interrupts`), not SIGALRM, which only the main thread gets.
- **Stops** (`kill_job.py`, RQ's stop-job, stop-execution and kill-horse commands, a cold stop, the
  fence's lease-lost stop) reach each job's task the same way; a job stopped by a person ends
  "stopped", the others are failed or re-queued when they have retries, as on a one-job worker.
- **Warm stop** (SIGINT, RQ's shutdown command): take no more jobs, wait for all running ones, exit.
  **Cold stop** (SIGTERM, the consumer gone): stop all of them, wait for their outcome, exit.
- A worker that dies leaves every one of its executions in its RQ execution set: the supervisor or
  any consumer's janitor recovers each of them (`workbench.recovery.abandon_worker`).
"""

from __future__ import annotations

import json
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from rq import Queue
from rq.exceptions import StopRequested
from rq.job import Job
from rq.timeouts import BaseDeathPenalty, JobTimeoutException
from rq.worker import WorkerStatus

from . import defaults
from .interrupts import DEADLINES, WINDOWS, exception_with
from .jobs import catalog_spec
from .worker import EXIT_CRASHED, EXIT_DONE, JobStopped, WorkbenchWorker

#: Put a dequeued job back at the front of its queue, once: out of the intermediate list (single-queue
#: workers take jobs through it) and onto the queue unless it is there already (a retried hand-back).
#: A job the lean take already claimed (status `started`, this worker's name) is queued again: the
#: next take claims it afresh (its generation only ever grows, so no run of it is confused with another).
#: KEYS: intermediate list, queue, job hash. ARGV: job id, this worker's name.
_HAND_BACK = Script(
    None,  # type: ignore[arg-type]  # bound to a client per call
    b"""
redis.call('LREM', KEYS[1], 1, ARGV[1])
if redis.call('HGET', KEYS[3], 'status') == 'started' and redis.call('HGET', KEYS[3], 'worker_name') == ARGV[2] then
  redis.call('HSET', KEYS[3], 'status', 'queued')
  redis.call('HDEL', KEYS[3], 'worker_name')
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
""",
)



class ThreadDeathPenalty(BaseDeathPenalty):
    """RQ's job timeout for a job that runs in a thread: a timer raises it inside the job's task.

    RQ's own choice (SIGALRM) reaches only the main thread; RQ's TimerDeathPenalty would raise it
    wherever the thread is, RQ's bookkeeping included, rewrites the exception class's message for
    every job and starts a thread per job. Outside a task window (a callback) the deadline does nothing.
    """

    def __init__(self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._job_id: str | None = kwargs.get("job_id")
        self._deadline: list[Any] | None = None

    def setup_death_penalty(self) -> None:
        if not self._timeout or self._timeout <= 0 or self._job_id is None:
            return
        message = f"Task exceeded maximum timeout value ({self._timeout} seconds)"  # RQ's words
        self._deadline = DEADLINES.arm(self._timeout, self._job_id, exception_with(self._exception, message))

    def cancel_death_penalty(self) -> None:
        if self._deadline is not None:
            DEADLINES.disarm(self._deadline)
            self._deadline = None


class ThreadedWorker(WorkbenchWorker):
    """WorkbenchWorker running up to `threads` jobs at once (see the module docstring)."""

    death_penalty_class = ThreadDeathPenalty

    def __init__(self, *args: Any, threads: int = defaults.DEFAULT_THREADS, **kwargs: Any) -> None:
        self._stopped_jobs: set[str] = set()  # before RQ's __init__, which sets _stopped_job_id
        super().__init__(*args, **kwargs)
        self.threads = threads
        self._slots = threading.Condition()
        self._running: set[str] = set()  # the jobs handed to the job threads and not ended yet
        self._inbox: queue_module.SimpleQueue = queue_module.SimpleQueue()  # (job, queue) for the job threads
        self._job_threads: list[threading.Thread] = []
        self._alone: str | None = None  # the CPU-bound job running alone
        self._stop_reasons: dict[str, str] = {}  # job id -> why it was stopped (each job stopped once)
        self._state_written_at = 0.0  # monotonic time the state was last written
        self._main_state = "starting"  # the main thread's own state; the broker shows "busy" while any job runs
        self._dispatching = False  # main thread between taking a job and handing it to its thread
        self._tearing_down = False
        self._cold_reason: str | None = None
        self._dispatched = 0
        self._thread_crashed = False

    # -- one stop, per job -------------------------------------------------------------
    @property
    def _stopped_job_id(self) -> str | None:
        """RQ's "this job was stopped on request" (STOPPED, never retried), for the job this thread ends."""
        job = getattr(getattr(self, "_ending", None), "job", None)
        return job.id if job is not None and job.id in self._stopped_jobs else None

    @_stopped_job_id.setter
    def _stopped_job_id(self, job_id: str | None) -> None:
        if job_id is not None:
            self._stopped_jobs.add(job_id)
            return
        job = getattr(getattr(self, "_ending", None), "job", None)
        if job is not None:
            self._stopped_jobs.discard(job.id)

    def stop_job(self, job_id: str, reason: str, *, by_request: bool) -> bool:
        """Stop one running job: `by_request` (a person's stop-job) ends it "stopped", else failed or re-queued.

        A job still between dequeue and its task is stopped as its task begins. False if it does not run here.
        """
        with self._slots:  # (reentrant: a signal handler may take it while the main thread waits on it)
            if job_id not in self._running:
                return False
            if by_request:
                self._stopped_jobs.add(job_id)
            self._stop_reasons[job_id] = reason
            if WINDOWS.interrupt(job_id, exception_with(JobStopped, reason), early=True):
                DEADLINES.wake()  # it nudges the stop until it lands
        return True

    def stop_running_jobs(self, reason: str) -> None:
        """Stop every job this worker runs (a cold stop, the fence when the lease runs out)."""
        for job_id in list(self._running):
            if job_id not in self._stop_reasons:
                self.stop_job(job_id, reason, by_request=False)

    def tasks_running(self) -> bool:
        return bool(WINDOWS.running())

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's kill-horse command: every running job ends as a stopped one would (failed or re-queued)."""
        for job_id in list(self._running):
            self.stop_job(job_id, "stopped by user", by_request=False)

    @property
    def horse_pid(self) -> int:
        return (self.pid or 0) if self._running else 0

    def request_stop_execution(self, execution_id: str) -> None:
        execution = self.executions.get(execution_id)
        if execution is None or not self.stop_job(execution.job_id, "stopped by user", by_request=True):
            self.log.warning("Worker %s: not running execution %s, command ignored", self.name, execution_id)

    def handle_payload(self, message: dict[str, Any]) -> None:
        try:
            payload = json.loads(message["data"])
        except (ValueError, TypeError, KeyError):
            payload = None
        if isinstance(payload, dict) and payload.get("command") == "stop-job":
            job_id = payload.get("job_id")
            if not (isinstance(job_id, str) and self.stop_job(job_id, "stopped by user", by_request=True)):
                self.log.warning("Worker %s: not working on job %s, command ignored", self.name, job_id)
            return
        super().handle_payload(message)

    # -- warm and cold stop (signals reach the main thread) -------------------------------
    def _interruptible(self) -> bool:
        """Whether the main thread may be unwound now: in its loop, not handing a job over, not tearing down."""
        return self._looping and not self._dispatching and not self._tearing_down

    def _shutdown(self) -> None:
        # RQ's warm stop: stop taking jobs; the running ones finish (teardown waits for them).
        self._stop_requested = True
        if self._running:
            try:
                self.set_shutdown_requested_date()  # `list_workers.py` and `kill_workers.py` see it stopping
            except redis.RedisError:
                pass
        if self._interruptible():
            raise StopRequested()

    def _cold_stop(self, signum: int, frame: FrameType | None, reason: str = "stopped by user (cold shutdown)") -> None:
        if self.exit_code == EXIT_CRASHED and not self._thread_crashed:
            self.exit_code = EXIT_DONE
        self._stop_requested = True
        self._cold_reason = reason
        self.stop_running_jobs(reason)
        if self._interruptible():
            raise StopRequested()

    def teardown(self) -> None:
        self._tearing_down = True
        self._wait_for_jobs(lambda: not self._running)
        for _ in self._job_threads:
            self._inbox.put(None)  # each job thread ends
        super().teardown()

    # -- the work loop: take a job when a slot is free, run it in a thread ------------------
    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        while True:
            self._wait_for_jobs(self._slot_free, stop=True)
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            if result is None:
                return None
            self._dispatching = True
            job, queue = result
            if self._io_bound(job) or not self._running:
                return result  # handed to its thread by execute_job, which ends the dispatch
            try:
                self._hand_back(job, queue)
            finally:
                self._dispatching = False
            self.log.info(
                "Worker %s: job %s is CPU-bound; handed back to %s until this worker's %d job(s) end",
                self.name, job.id, queue.name, len(self._running),
            )  # fmt: skip
            self._wait_for_jobs(lambda: not self._running, stop=True)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Called by RQ's loop in the main thread: hand the job's whole run to one of the job threads."""
        with self._slots:
            self._running.add(job.id)
            if not self._io_bound(job):
                self._alone = job.id
            if len(self._job_threads) < self.threads:  # started as needed, then kept: one per slot
                thread = threading.Thread(target=self._serve, name=f"jobs {len(self._job_threads) + 1}", daemon=True)
                self._job_threads.append(thread)
                thread.start()
        self._dispatched += 1
        self._inbox.put((job, queue))
        self._dispatching = False
        if self._stop_requested and self._cold_reason:
            self.stop_running_jobs(self._cold_reason)  # a cold stop that came while it was handed over

    def _serve(self) -> None:
        while (item := self._inbox.get()) is not None:
            self._run(*item)

    def _run(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)  # WorkbenchWorker's: claim, RQ's execution, the task, its end
        except StopRequested:
            pass  # asked to stop while waiting for the broker: the janitor settles this job
        except BaseException:  # noqa: BLE001 - what ends a one-job worker's loop ends this worker
            self.log.error("Worker %s: unhandled exception running job %s; stopping", self.name, job.id, exc_info=True)
            self._thread_crashed = True
            self.exit_code = EXIT_CRASHED
            self._stop_requested = True
        finally:
            with self._slots:  # with stop_job's check: no stop can be left pending for a later run of this job
                WINDOWS.forget(job.id)
                self._stopped_jobs.discard(job.id)
                self._stop_reasons.pop(job.id, None)
                self._running.discard(job.id)
                if self._alone == job.id:
                    self._alone = None
                self._slots.notify_all()

    def _slot_free(self) -> bool:
        return len(self._running) < self.threads and self._alone is None

    def _wait_for_jobs(self, done: Callable[[], bool], *, stop: bool = False) -> None:
        """Main thread: wait until `done()` (checked under the slots' lock), keeping RQ's worker record
        fresh; with `stop`, a requested stop ends the wait (StopRequested)."""
        while True:
            with self._slots:
                if done():
                    return
                if not (stop and self._stop_requested):
                    self._slots.wait(defaults.THREAD_SLOT_WAIT_S)
            if stop and self._stop_requested:
                raise StopRequested()
            if self._cold_reason:
                self.stop_running_jobs(self._cold_reason)
            self.heartbeat()  # throttled; rides out an outage

    @staticmethod
    def _io_bound(job: Job) -> bool:
        """Whether the job may share the worker: its task is I/O-bound (or not a catalog task: it fails at once)."""
        try:
            spec = catalog_spec(job.func_name)
        except Exception:  # noqa: BLE001 - an unreadable job fails on its own path, without running anything
            return True
        return spec is None or spec.io_bound

    def _hand_back(self, job: Job, queue: Queue) -> None:
        while True:
            try:
                keys = [queue.intermediate_queue_key, queue.key, job.key]
                _HAND_BACK(keys=keys, args=[job.id, self.name], client=self.connection)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._await_broker(exc)  # then again: the script puts it back once

    # -- the state the broker shows: busy while any job runs -------------------------------
    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if threading.current_thread() is threading.main_thread():
            self._main_state = state
        shown = state
        if state != WorkerStatus.SUSPENDED and (state == WorkerStatus.BUSY or self.executions):
            shown = WorkerStatus.BUSY
        elif threading.current_thread() is not threading.main_thread():
            shown = self._main_state  # a job thread ending the last job: back to the main thread's state
        fresh = time.monotonic() - self._state_written_at < defaults.STATE_REWRITE_S
        if pipeline is None and shown == self._state and fresh:
            return  # unchanged: with jobs coming and going it would be rewritten twice per job
        super().set_state(shown, pipeline)
        self._state_written_at = time.monotonic()

    def get_state(self) -> str:
        return self._main_state

    def work(self, *args: Any, **kwargs: Any) -> bool:
        max_jobs: int | None = kwargs.get("max_jobs")
        worked = super().work(*args, **kwargs)
        if self._thread_crashed:
            self.exit_code = EXIT_CRASHED
        elif self.exit_code == EXIT_CRASHED and max_jobs is not None and self._dispatched >= max_jobs:
            self.exit_code = EXIT_DONE  # RQ's loop counts jobs as it hands them over; all have ended
        return worked
