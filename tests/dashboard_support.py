"""What the dashboard tests share: hostile payloads, job states made through RQ's own API, a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
import requests
from rq.job import JobStatus
from rq.results import Result

from workbench.jobs import CatalogJob, make_queue

from .support import ROOT, free_port, wait_for

#: The issue's payload, as a scraped URL parameter would carry it.
XSS_URL = 'http://example.com/"><img src=x onerror=alert(1)>'
#: A queue name RQ accepts and rq-dashboard rendered as HTML.
XSS_QUEUE = "<img src=x onerror=alert(2)>"
SLEEP = "task_def.sleep.sleep"


def enqueue_hostile_job(conn: redis.Redis, queue: str = "queue_one") -> CatalogJob:
    """A job whose description and meta carry the payload, enqueued straight through RQ."""
    job = make_queue(queue, conn).enqueue(SLEEP, seconds=0, description=f"scrape(url={XSS_URL!r})")
    job.meta["note"] = XSS_URL
    job.save_meta()
    return job


def make_failed(conn: redis.Redis, job: CatalogJob, exc_string: str) -> None:
    """Move a queued job to failed with `exc_string` as its traceback, as a worker would record it."""
    queue = make_queue(job.origin, conn)
    with conn.pipeline() as pipe:
        queue.remove(job.id, pipeline=pipe)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        queue.failed_job_registry.add(job, ttl=600, exc_string=exc_string, pipeline=pipe)
        Result.create_failure(job, ttl=600, exc_string=exc_string, pipeline=pipe)
        pipe.execute()


def make_started(conn: redis.Redis, job: CatalogJob, worker_name: str, expires_at: float) -> None:
    """Put a queued job in its started registry as `worker_name` running it, entry expiring at `expires_at`."""
    queue = make_queue(job.origin, conn)
    queue.remove(job.id)
    job.worker_name = worker_name
    job.set_status(JobStatus.STARTED)
    job.save()
    conn.zadd(queue.started_job_registry.key, {f"{job.id}:{uuid.uuid4().hex}": expires_at})


class Dashboard(str):
    """A running dashboard's base URL, with its process and the start-up line it printed."""

    process: subprocess.Popen
    startup: str

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        """A same-origin POST, as the dashboard's own pages send it."""
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        return requests.post(self + path, headers=headers, timeout=60, **kwargs)

    @property
    def origin(self) -> str:
        return str(self)


@contextmanager
def dashboard_server(env: dict[str, str], *args: str, host: str = "127.0.0.1", **overrides: str) -> Iterator[Dashboard]:
    """`python dashboard_main.py` on a free port, as a user starts it; yields its base URL, stops it by pid."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "dashboard_main.py", "--port", str(port), *args],
        cwd=ROOT,
        env={**env, **overrides},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = Dashboard(f"http://{'[' + host + ']' if ':' in host else host}:{port}")
    base.process = process

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"dashboard exited {process.returncode}: {process.stderr.read()}")
        try:
            requests.get(base + "/favicon.ico", timeout=1)
        except requests.ConnectionError:
            return False
        return True

    try:
        wait_for(answers, "the dashboard to answer")
        base.startup = process.stderr.readline()
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        process.stderr.close()
