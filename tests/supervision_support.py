"""Helpers for the consumer and supervision tests: enqueue catalog jobs, read workers and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import redis
from rq import Retry
from rq.worker import Worker

from task_def.sleep import sleep
from workbench.jobs import SERIALIZER, fetch_job, make_queue
from workbench.processes import alive

from .support import child_pids, wait_for

#: Short supervision timings, so dead workers are noticed in seconds (flag > env > default).
FAST = {
    "WORKBENCH_HEARTBEAT_S": "0.3",
    "WORKBENCH_LIVENESS_TTL_S": "1.5",
    "WORKBENCH_JANITOR_S": "0.5",
    "WORKBENCH_TIMEOUT_GRACE_S": "1",
}


def enqueue_sleep(conn: redis.Redis, seconds: float, queue: str = "queue_one", retries: int = 0, timeout: int = 60):
    return make_queue(queue, conn).enqueue(
        sleep, seconds=seconds, job_timeout=timeout, retry=Retry(max=retries) if retries else None
    )


def status(conn: redis.Redis, job_id: str) -> str:
    return fetch_job(job_id, conn).get_status(refresh=True).value


def failure(conn: redis.Redis, job_id: str) -> str:
    """The failure text RQ recorded for a job."""
    result = fetch_job(job_id, conn).latest_result()
    return (result.exc_string or "") if result else ""


def worker_names(conn: redis.Redis) -> set[str]:
    return {w.name for w in Worker.all(connection=conn, serializer=SERIALIZER)}


def worker_pids(conn: redis.Redis) -> dict[str, int]:
    return {w.name: w.pid for w in Worker.all(connection=conn, serializer=SERIALIZER)}


def wait_started(conn: redis.Redis, job_id: str) -> None:
    """Wait until a worker runs the job: its status says so, and its execution is registered (a run's start
    records are written once it has lasted a moment, workbench.lean_path)."""
    wait_for(lambda: status(conn, job_id) == "started", f"job {job_id} to start")
    wait_for(lambda: _running_worker(conn, job_id), f"a worker to show job {job_id} as its current job")


def _running_worker(conn: redis.Redis, job_id: str) -> bool:
    """Whether a worker has an execution of the job (a worker with --threads has several at once)."""
    return any(
        job_id in {execution.job_id for execution in w.get_current_executions()}
        for w in Worker.all(connection=conn, serializer=SERIALIZER)
    )


def busy_worker_pid(conn: redis.Redis, job_id: str) -> int:
    for worker in Worker.all(connection=conn, serializer=SERIALIZER):
        if worker.get_current_job_id() == job_id:
            return worker.pid
    raise AssertionError(f"no worker runs {job_id}")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, children first (as a crash of the whole box would)."""
    for child in reversed(child_pids(pid)):
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def finish(process: subprocess.Popen, timeout: float = 30) -> str:
    """Wait for a consumer to exit and return all it printed."""
    out, _ = process.communicate(timeout=timeout)
    return out


def no_process_left(pids: list[int]) -> bool:
    return not any(alive(pid) for pid in pids)


class Output:
    """Collects a consumer's output in a thread, so a test can wait for a line while it runs."""

    def __init__(self, process: subprocess.Popen) -> None:
        import threading

        self.process = process
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, fragment: str, timeout: float = 20.0) -> str:
        return wait_for(lambda: next((line for line in self.lines if fragment in line), None), repr(fragment), timeout)

    def finish(self, timeout: float = 30.0) -> str:
        self.process.wait(timeout)
        self._thread.join(5)
        return self.text


def wait_listening(conn: redis.Redis, count: int) -> set[str]:
    """Wait until `count` workers are registered and subscribed to their command channels."""

    def ready():
        names = worker_names(conn)
        if len(names) != count:
            return None
        subscribed = conn.pubsub_numsub(*(f"rq:pubsub:{name}" for name in names))
        return names if all(n == 1 for _, n in subscribed) else None

    return wait_for(ready, f"{count} workers listening for commands")


def stop_cold(process: subprocess.Popen) -> None:
    """Ctrl-C twice, as a person in a hurry: long test jobs end at once instead of at teardown."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        process.wait(20)
