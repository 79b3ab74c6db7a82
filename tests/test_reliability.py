"""Real faults, counted outcomes: every job accounted for, none run twice at once, none lost."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from rq import Retry
from rq.worker import Worker

from workbench.jobs import SERIALIZER, make_queue

from . import marker_tasks
from .supervision_support import FAST, Output, failure, status, stop_cold
from .support import kill_broker, wait_for

MARKER_CONSUMER = "tests/marker_consumer.py"


def enqueue_marks(conn, folder, count: int, seconds: float, retries: int = 0, timeout: int = 600) -> list[str]:
    queue = make_queue("queue_one", conn)
    retry = Retry(max=retries) if retries else None
    data = [
        queue.prepare_data(marker_tasks.MARK_PATH, kwargs={"folder": str(folder), "seconds": seconds},
                           timeout=timeout, retry=retry)
        for _ in range(count)
    ]  # fmt: skip
    with conn.pipeline() as pipe:
        jobs = queue.enqueue_many(data, pipeline=pipe)
        pipe.execute()
    return [job.id for job in jobs]


def statuses(conn, ids: list[str]) -> list[str]:
    with conn.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        return [(s or b"missing").decode() for s in pipe.execute()]


def busy_pids(conn) -> list[int]:
    return [w.pid for w in Worker.all(connection=conn, serializer=SERIALIZER) if w.get_current_job_id()]


def test_three_workers_killed_at_random_every_job_accounted_for_none_run_twice_at_once(conn, consumer, tmp_path):
    process = consumer("--workers", "10", "--queue", "queue_one", script=MARKER_CONSUMER, wait_workers=10, **FAST)
    output = Output(process)
    ids = enqueue_marks(conn, tmp_path, 2000, seconds=0.01, retries=1)
    killed_at: dict[int, int] = {}
    rng = random.Random(8)
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 1.2))
        victims = [pid for pid in busy_pids(conn) if pid not in killed_at]
        if victims:
            victim = rng.choice(victims)
            killed_at[victim] = time.time_ns()
            os.kill(victim, signal.SIGKILL)
    wait_for(lambda: all(s in ("finished", "failed") for s in statuses(conn, ids)), "every job to end", 120)
    final = statuses(conn, ids)
    assert final.count("finished") + final.count("failed") == 2000
    assert len(killed_at) == 3, "the load ended before three workers could be killed"
    assert output.text.count("died (killed by signal SIGKILL)") == 3
    runs = marker_tasks.runs(tmp_path)
    assert set(runs) <= set(ids)
    assert not [job_id for job_id, job_runs in runs.items() if marker_tasks.overlaps(job_runs, killed_at)]
    assert all(len(runs.get(job_id, [])) >= 1 for job_id, s in zip(ids, final, strict=True) if s == "finished")
    stop_cold(process)


@pytest.mark.parametrize("seconds", [4, pytest.param(95, marks=pytest.mark.slow)])
def test_killed_worker_of_a_long_retried_job_never_runs_it_twice_at_once(conn, consumer, tmp_path, seconds):
    """Stock RQ ran a job over 90 s three times, two at once, once its worker's main process died."""
    process = consumer("--workers", "2", "--queue", "queue_one", script=MARKER_CONSUMER, wait_workers=2, **FAST)
    output = Output(process)
    [job_id] = enqueue_marks(conn, tmp_path, 1, seconds=seconds, retries=2)
    wait_for(lambda: list(tmp_path.glob("*.start")), "the first run to start")
    [victim] = busy_pids(conn)
    killed_at = {victim: time.time_ns()}
    os.kill(victim, signal.SIGKILL)
    output.wait_for("died (killed by signal SIGKILL)", timeout=5)
    wait_for(lambda: status(conn, job_id) == "finished", "the retry to finish", seconds + 30)
    job_runs = marker_tasks.runs(tmp_path)[job_id]
    assert len(job_runs) == 2
    assert not marker_tasks.overlaps(job_runs, killed_at)
    stop_cold(process)


@pytest.mark.parametrize("task", ["sleep", "count_primes"])
def test_job_over_its_timeout_fails_with_a_timeout_reason_and_the_pool_survives(conn, consumer, cli, task):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    param = "seconds=30" if task == "sleep" else "limit=2000000000"
    started = time.monotonic()
    result = cli("producer_main.py", "--task", task, "--param", param, "--timeout", "1", "--wait", "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "JobTimeoutException" in result.stdout or "timeout" in result.stdout.lower()
    assert elapsed < 15  # near the 1 s timeout, not the task's own length
    after = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--wait", "--json")
    assert after.returncode == 0, after.stderr
    assert process.poll() is None
    stop_cold(process)


def test_killed_broker_restarted_under_load_loses_no_job_and_workers_carry_on(consumer, killable_broker, tmp_path):
    """The session broker is shared, so this test uses its own AOF broker, which it kills -9."""
    port, folder, start = killable_broker
    own = start()
    url = f"redis://127.0.0.1:{port}/0"
    process = consumer("--workers", "4", "--queue", "queue_one", script=MARKER_CONSUMER, REDIS_URL=url, **FAST)
    output = Output(process)  # read its output, or a full pipe would stall the consumer
    wait_for(lambda: own.scard("rq:workers") >= 4, "4 workers on the AOF broker")
    ids = enqueue_marks(own, tmp_path, 400, seconds=0.02, retries=2)
    wait_for(lambda: statuses(own, ids).count("finished") >= 50, "some jobs to finish")
    time.sleep(1.2)  # appendfsync everysec: what was acknowledged a second ago is on disk
    kill_broker(folder)
    time.sleep(2)
    start()
    wait_for(lambda: all(s == "finished" for s in statuses(own, ids)), "every job to finish after restart", 90)
    assert own.scard("rq:workers") == 4  # the same pool carries on, re-registered
    assert process.poll() is None
    assert "broker" in output.text.lower()
    stop_cold(process)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_load_100k_jobs_drained_by_10_workers_none_lost(conn, consumer, cli):
    process = consumer("--workers", "10", "--queue", "queue_one", wait_workers=10)
    Output(process)  # drained, or 400,000 log lines would fill the pipe and stall the consumer
    for _ in range(10):
        result = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--count", "10000")
        assert result.returncode == 0, result.stderr
    queue = make_queue("queue_one", conn)
    wait_for(lambda: queue.finished_job_registry.count == 100_000, "100,000 finished jobs", 900, interval=1)
    assert queue.failed_job_registry.count == 0
    assert queue.count == 0
    assert process.poll() is None
    stop_cold(process)


def test_failure_text_helper_reads_real_failures(conn, consumer, cli):
    """Guard for the helpers above: a refused job's recorded failure is what `failure()` returns."""
    job = make_queue("queue_one", conn).enqueue("os.getcwd")
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    wait_for(lambda: status(conn, job.id) == "failed", "the refused job to fail")
    assert "not a catalog task" in failure(conn, job.id)
