"""RQ's own public API, and the `rq info` CLI, read the jobs our workers ran as they read plain RQ's.

The worker's lean path (workbench.lean_path) writes a short run's start and end in its own way; this
module checks that what RQ's readers see is unchanged: statuses, return values, results, registries,
execution records of a running job, the worker's current job, stop-job, retries and dependencies.
One consumer run serves every test (a module fixture), so the module costs a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import redis
from rq import Retry, Worker
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.results import Result

from workbench.jobs import SERIALIZER, make_queue

from .conftest import stop_process_tree
from .support import ROOT, free_port, wait_for

QUEUE = "compat"
SLEEP = "task_def.sleep.sleep"


def _ended(conn: redis.Redis, job_id: str) -> bool:
    status = conn.hget(f"rq:job:{job_id}", "status")
    return status in (b"finished", b"failed", b"stopped")


@pytest.fixture(scope="module")
def ran(broker_url, tmp_path_factory):
    """Jobs of every kind, run by one consumer with two workers; what observers saw while they ran."""
    conn = redis.Redis.from_url(broker_url)
    conn.flushdb()
    queue = make_queue(QUEUE, conn)
    jobs = {
        "ok": queue.enqueue(SLEEP, kwargs={"seconds": 0}),
        "refused": queue.enqueue(SLEEP, kwargs={"seconds": -1}),
        "retried": queue.enqueue(SLEEP, kwargs={"seconds": -1}, retry=Retry(max=1)),
        "long": queue.enqueue(SLEEP, kwargs={"seconds": 30}),
        "parent": queue.enqueue(SLEEP, kwargs={"seconds": 0.2}),
    }
    jobs["child"] = queue.enqueue(SLEEP, kwargs={"seconds": 0}, depends_on=jobs["parent"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_"))}
    env |= {
        "REDIS_URL": broker_url,
        "WORKBENCH_DATA_DIR": str(tmp_path_factory.mktemp("compat")),
        "WORKBENCH_BROKER_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [sys.executable, "consumer_main.py", "--workers", "2", "--queue", QUEUE],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    seen: dict = {"jobs": {name: job.id for name, job in jobs.items()}}
    try:
        long_id = jobs["long"].id
        registry = StartedJobRegistry(QUEUE, connection=conn)
        wait_for(lambda: long_id in registry.get_job_ids(), "the long job in the started registry")
        seen["started_ids"] = registry.get_job_ids()
        seen["current"] = [w.get_current_job_id() for w in Worker.all(connection=conn, serializer=SERIALIZER)]
        seen["executions"] = Job.fetch(long_id, connection=conn, serializer=SERIALIZER).get_executions()
        seen["status_running"] = Job.fetch(long_id, connection=conn, serializer=SERIALIZER).get_status()
        others = [job_id for name, job_id in seen["jobs"].items() if name != "long"]
        wait_for(lambda: all(_ended(conn, job_id) for job_id in others), "every short job to end")
        info = subprocess.run(
            [sys.executable, "-m", "rq.cli", "info", "--url", broker_url, QUEUE],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        seen["info"] = info.stdout + info.stderr
        send_stop_job_command(conn, long_id, serializer=SERIALIZER)
        wait_for(lambda: _ended(conn, long_id), "the stopped job to end")

        def counted() -> int:
            workers = Worker.all(connection=conn, serializer=SERIALIZER)
            return sum(w.successful_job_count for w in workers)

        seen["successes"] = wait_for(lambda: counted() >= 3 and counted(), "the workers' success counters")
    finally:
        process.send_signal(signal.SIGINT)
        stop_process_tree(process)
    yield conn, seen
    conn.flushdb()
    conn.close()


def fetch(conn: redis.Redis, seen: dict, name: str) -> Job:
    return Job.fetch(seen["jobs"][name], connection=conn, serializer=SERIALIZER)


def test_a_finished_job_reads_as_rq_writes_it(ran):
    conn, seen = ran
    job = fetch(conn, seen, "ok")
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == {"slept_s": 0.0}
    result = job.latest_result()
    assert result is not None and result.type == Result.Type.SUCCESSFUL
    assert result.return_value == {"slept_s": 0.0} and result.execution_id
    assert result.worker_name == job.worker_name and job.worker_name
    assert job.enqueued_at <= job.started_at <= job.ended_at
    assert job.id in FinishedJobRegistry(QUEUE, connection=conn).get_job_ids()
    assert job.id not in StartedJobRegistry(QUEUE, connection=conn).get_job_ids()
    assert conn.ttl(job.key) > 0  # RQ's result TTL on the job hash
    assert conn.llen(f"rq:queue:{QUEUE}:intermediate") == 0


def test_a_failed_job_reads_as_rq_writes_it(ran):
    conn, seen = ran
    job = fetch(conn, seen, "refused")
    assert job.get_status() == JobStatus.FAILED
    result = job.latest_result()
    assert result is not None and result.type == Result.Type.FAILED
    assert "refused parameters" in result.exc_string
    assert job.id in FailedJobRegistry(QUEUE, connection=conn).get_job_ids()
    assert job.return_value() is None


def test_a_retried_job_ran_twice_then_failed(ran):
    conn, seen = ran
    job = fetch(conn, seen, "retried")
    assert job.get_status() == JobStatus.FAILED
    assert job.retries_left == 0  # it had one: the first run's failure re-queued it (RQ writes no result then)
    assert [r.type for r in job.results()] == [Result.Type.FAILED]
    assert int(conn.hget(job.key, "workbench_generation")) == 2  # two runs
    assert job.id in FailedJobRegistry(QUEUE, connection=conn).get_job_ids()


def test_a_running_job_shows_in_the_started_registry_its_worker_and_its_execution(ran):
    conn, seen = ran
    long_id = seen["jobs"]["long"]
    assert long_id in seen["started_ids"]
    assert long_id in seen["current"]
    assert seen["status_running"] == JobStatus.STARTED
    assert [execution.job_id for execution in seen["executions"]] == [long_id]


def test_rq_stop_job_stops_it(ran):
    conn, seen = ran
    job = fetch(conn, seen, "long")
    assert job.get_status() == JobStatus.STOPPED
    assert job.id in FailedJobRegistry(QUEUE, connection=conn).get_job_ids()
    assert job.id not in StartedJobRegistry(QUEUE, connection=conn).get_job_ids()
    assert job.get_executions() == []


def test_a_dependent_job_runs_after_its_parent(ran):
    conn, seen = ran
    parent, child = fetch(conn, seen, "parent"), fetch(conn, seen, "child")
    assert parent.get_status() == JobStatus.FINISHED and child.get_status() == JobStatus.FINISHED
    assert child.started_at >= parent.ended_at
    assert child.return_value() == {"slept_s": 0.0}


def test_rq_info_lists_the_queue_and_the_workers(ran):
    _conn, seen = ran
    info = seen["info"]
    assert QUEUE in info
    assert "2 workers" in info


def test_the_workers_count_their_successes(ran):
    _conn, seen = ran
    assert seen["successes"] >= 3  # ok, parent and child (RQ's successful_job_count, sent with the heartbeat)


def test_nothing_is_left_behind(ran):
    conn, _seen = ran
    assert conn.llen(f"rq:queue:{QUEUE}:intermediate") == 0
    assert StartedJobRegistry(QUEUE, connection=conn).get_job_ids() == []
