"""The workbench's RQ worker: no fork per job, catalog-only jobs, and a clear account of why it exits.

It is RQ's SimpleWorker (a job runs in the worker process itself, so a no-op job costs a few
Redis round trips instead of a fork) with the stop semantics the consumer and kill_thread rely on:

- SIGINT, or RQ's `shutdown` command: warm stop, the current job finishes first;
- SIGTERM: cold stop, the current job ends at once as "stopped by user" (failed, or re-queued
  when it has retries left);
- RQ's `kill-horse` command, or `stop-job` for the current job: that job ends the same way and
  the worker carries on.

The process exit code says why it ended; see the EXIT_* constants.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from types import FrameType

from rq.worker import SimpleWorker, WorkerStatus

from .jobs import SERIALIZER, TASK_RUNNING, CatalogJob

#: Exit codes of a worker process, read by the supervisor.
EXIT_DONE = 0  # stopped as asked, burst queues drained, or --max-jobs reached
EXIT_COMMANDED = 3  # stopped by RQ's shutdown command (kill_thread): must not be respawned
EXIT_CRASHED = 70  # the work loop ended for no requested reason: respawn

#: Internal signal the pubsub thread uses to interrupt the job running in the main thread.
STOP_JOB_SIGNAL = signal.SIGUSR1


class JobStopped(Exception):
    """Raised inside a running job when a person stopped it (kill_thread or a cold stop)."""


def worker_name(slot: int, token: str) -> str:
    """A readable, unique worker name: host, slot number and a short random token."""
    host = socket.gethostname().split(".")[0][:20] or "host"
    return f"{host}.w{slot}.{token}"


class WorkbenchWorker(SimpleWorker):
    """SimpleWorker running CatalogJobs, JSON-serialised, with explicit stop semantics."""

    job_class = CatalogJob

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        kwargs.setdefault("job_class", CatalogJob)
        super().__init__(*args, **kwargs)
        self.exit_code = EXIT_CRASHED
        self._stop_reason = ""
        self._drained = False
        self._jobs_done = 0

    # -- stop requests ---------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self._cold_stop)
        signal.signal(STOP_JOB_SIGNAL, self._stop_current_job)

    def request_stop(self, signum, frame) -> None:
        self.exit_code = EXIT_COMMANDED if self._stop_reason == "command" else EXIT_DONE
        try:
            super().request_stop(signum, frame)
        finally:
            # RQ turns the next SIGINT into a cold stop; here only SIGTERM means cold.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, self._cold_stop)

    def _cold_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.exit_code == EXIT_CRASHED:
            self.exit_code = EXIT_DONE
        self._stop_requested = True
        if TASK_RUNNING.is_set():
            raise JobStopped("stopped by user (cold shutdown)")
        if self.get_state() != WorkerStatus.BUSY:
            raise SystemExit(self.exit_code)

    def _stop_current_job(self, signum: int, frame: FrameType | None) -> None:
        if TASK_RUNNING.is_set():
            raise JobStopped("stopped by user")

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's hook for stopping the running job; here the job runs in this process."""
        if TASK_RUNNING.is_set():
            os.kill(os.getpid(), STOP_JOB_SIGNAL)

    @property
    def horse_pid(self) -> int:
        # RQ's kill-horse command only acts when there is a horse; ours is "the running job".
        return os.getpid() if TASK_RUNNING.is_set() else 0

    def handle_payload(self, message) -> None:
        try:
            command = json.loads(message["data"]).get("command")
        except (ValueError, TypeError, AttributeError):
            self.log.warning("Worker %s: ignored an unreadable command", self.name)
            return
        if command == "shutdown":
            self._stop_reason = "command"
        super().handle_payload(message)

    # -- running jobs ---------------------------------------------------------------
    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self._drained = result is None
        return result

    def execute_job(self, job, queue) -> None:
        super().execute_job(job, queue)
        self._jobs_done += 1

    def work(self, burst: bool = False, max_jobs: int | None = None, **kwargs) -> bool:
        """Run the work loop, then set `exit_code` to why it ended."""
        worked = super().work(burst=burst, max_jobs=max_jobs, **kwargs)
        quota_met = max_jobs is not None and self._jobs_done >= max_jobs
        if self.exit_code == EXIT_CRASHED and (self._drained or quota_met):
            self.exit_code = EXIT_DONE
        return worked
