"""Workers running several jobs at once (`consumer_main.py --threads N`): each job is what it is alone.

Real consumers, real worker processes, a real broker; every check reads RQ's own records (job
status, results, executions, the started registry) or the workbench's scripts, never timings.
"""

from __future__ import annotations

import json
import os
import signal

import pexpect
import pytest
import redis
from rq import Retry
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from workbench import fencing
from workbench.broker import start_embedded, stop_embedded
from workbench.jobs import SERIALIZER, fetch_job, make_queue
from workbench.progress import read as read_progress

from .dashboard_support import dashboard_server
from .supervision_support import FAST, Output, failure, kill_tree, status, wait_started, worker_names
from .support import free_port, wait_for
from .test_consumer import spawn

SLEEP, PRIMES, SCRAPE = "task_def.sleep.sleep", "task_def.primes.count_primes", "task_def.scrape.scrape"


def enqueue(conn, func: str, queue: str, retries: int = 0, timeout: int = 60, **kwargs):
    retry = Retry(max=retries) if retries else None
    return make_queue(queue, conn).enqueue(func, kwargs=kwargs, job_timeout=timeout, retry=retry)


def running_on(conn, name: str) -> set[str]:
    """The jobs RQ's records say worker `name` runs now (its execution set)."""
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn, serializer=SERIALIZER)
    return {execution.job_id for execution in worker.get_current_executions()} if worker else set()


def the_worker(conn) -> str:
    (name,) = worker_names(conn)
    return name


def overlap(a: Job, b: Job) -> bool:
    return a.started_at < b.ended_at and b.started_at < a.ended_at


def test_jobs_of_one_worker_finish_fail_and_time_out_each_as_alone_and_rq_reads_each(cli, conn, consumer):
    consumer("--workers", "1", "--threads", "4", "--queue", "qt", wait_workers=1)
    name = the_worker(conn)
    fine = [enqueue(conn, SLEEP, "qt", seconds=6) for _ in range(2)]
    late = enqueue(conn, SLEEP, "qt", timeout=1, seconds=30)
    refused = enqueue(conn, SCRAPE, "qt", url="http://127.0.0.1:1/")  # I/O-bound, refused at once
    for job in (*fine, late):
        wait_started(conn, job.id)
    # Each reports its own progress...
    wait_for(lambda: all(read_progress(fetch_job(job.id, conn).get_meta()) for job in fine), "each job's progress")
    # ...three at once on one worker: three RQ executions, three entries in RQ's started registry.
    assert {job.id for job in (*fine, late)} <= running_on(conn, name)
    started = StartedJobRegistry("qt", connection=conn, serializer=SERIALIZER)
    assert {job.id for job in (*fine, late)} <= set(started.get_job_ids())
    assert {fetch_job(job.id, conn).worker_name for job in (*fine, late)} == {name}
    (row,) = [json.loads(line) for line in cli("kill_thread/list_workers.py", "--json").stdout.splitlines()]
    assert row["state"] == "busy" and {job.id for job in fine} <= set(row["current_jobs"])

    wait_for(lambda: {status(conn, job.id) for job in fine} == {"finished"}, "the two sleeps to finish")
    wait_for(lambda: status(conn, late.id) == "failed", "the overrunning job to time out")
    wait_for(lambda: status(conn, refused.id) == "failed", "the refused scrape to fail")
    for job in fine:  # RQ's public API reads each job right
        fetched = Job.fetch(job.id, connection=conn, serializer=SERIALIZER)
        assert fetched.get_status() == "finished"
        assert fetched.return_value()["slept_s"] >= 6
        assert fetched.latest_result().type.name == "SUCCESSFUL"
    assert "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)" in failure(conn, late.id)
    assert "ScrapeRefused" in failure(conn, refused.id)
    a, b = (fetch_job(job.id, conn) for job in fine)
    assert overlap(a, b)  # they ran at the same time
    assert running_on(conn, name) == set() and started.get_job_ids() == []
    (row,) = [json.loads(line) for line in cli("kill_thread/list_workers.py", "--json").stdout.splitlines()]
    assert (row["done"], row["failed"], row["current_jobs"]) == (2, 2, [])


def test_kill_job_stops_one_of_the_jobs_and_the_others_carry_on(cli, conn, consumer):
    consumer("--workers", "1", "--threads", "3", "--queue", "qk", wait_workers=1)
    target = enqueue(conn, SLEEP, "qk", seconds=60)
    others = [enqueue(conn, SLEEP, "qk", seconds=3) for _ in range(2)]
    for job in (target, *others):
        wait_started(conn, job.id)
    listed = cli("kill_thread/list_workers.py").stdout  # the plain table too
    assert target.id in listed, listed
    stopped = cli("kill_thread/kill_job.py", target.id)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip().endswith("it is now stopped")
    assert status(conn, target.id) == "stopped"
    wait_for(lambda: {status(conn, job.id) for job in others} == {"finished"}, "the others to finish")  # untouched
    after = enqueue(conn, SLEEP, "qk", seconds=0)
    wait_for(lambda: status(conn, after.id) == "finished", "the worker to carry on")


def test_kill_workers_force_stops_every_job_of_a_threaded_worker(cli, conn, consumer):
    consumer("--workers", "1", "--threads", "3", "--queue", "qx", wait_workers=1)
    plain = [enqueue(conn, SLEEP, "qx", seconds=60) for _ in range(2)]
    retried = enqueue(conn, SLEEP, "qx", retries=1, seconds=60)
    for job in (*plain, retried):
        wait_started(conn, job.id)
    stopped = cli("kill_thread/kill_workers.py", "--all", "--force")
    assert stopped.returncode == 0, stopped.stderr
    assert {status(conn, job.id) for job in plain} == {"failed"}
    assert status(conn, retried.id) == "queued"  # re-queued for its retry; no worker is left to take it
    assert worker_names(conn) == set()


def test_the_dashboard_shows_every_job_of_a_threaded_worker(env, conn, consumer):
    process = consumer("--workers", "1", "--threads", "2", "--queue", "qd", wait_workers=1)
    jobs = [enqueue(conn, SLEEP, "qd", seconds=60) for _ in range(2)]
    for job in jobs:
        wait_started(conn, job.id)
    with dashboard_server(env) as dashboard:
        [row] = dashboard.get("/0/data/workers.json").json()["workers"]
    assert row["state"] == "busy" and sorted(row["current_job_ids"]) == sorted(job.id for job in jobs)
    assert row["current_job_id"] in row["current_job_ids"]  # rq-dashboard's own field: one of them
    process.send_signal(signal.SIGINT)
    Output(process).wait_for("Warm stop")
    process.send_signal(signal.SIGINT)  # cold: both stopped at once
    assert process.wait(20) == 0
    assert {status(conn, job.id) for job in jobs} == {"failed"}


def test_a_cpu_bound_job_never_shares_its_worker(conn, consumer):
    consumer("--workers", "1", "--threads", "4", "--queue", "qc", wait_workers=1)
    first = [enqueue(conn, SLEEP, "qc", seconds=1) for _ in range(2)]
    maths = enqueue(conn, PRIMES, "qc", limit=2_000_000)
    last = enqueue(conn, SLEEP, "qc", seconds=1)
    jobs = [*first, maths, last]
    wait_for(lambda: {status(conn, job.id) for job in jobs} == {"finished"}, "every job to finish", 30)
    ended = {job.id: fetch_job(job.id, conn) for job in jobs}
    alone = ended[maths.id]
    assert not any(overlap(alone, ended[job.id]) for job in (*first, last))
    assert ended[first[0].id].ended_at <= alone.started_at  # handed back, then taken once the worker was idle...
    assert alone.ended_at <= ended[last.id].started_at  # ...still ahead of the job queued after it


def test_warm_stop_waits_for_every_running_job(conn, consumer):
    process = consumer("--workers", "1", "--threads", "3", "--queue", "qw", wait_workers=1)
    jobs = [enqueue(conn, SLEEP, "qw", seconds=2) for _ in range(3)]
    for job in jobs:
        wait_started(conn, job.id)
    process.send_signal(signal.SIGINT)
    out = Output(process).finish()
    assert process.returncode == 0, out
    assert {status(conn, job.id) for job in jobs} == {"finished"}
    assert worker_names(conn) == set()


def test_cold_stop_stops_every_running_job_failed_or_requeued(conn, consumer):
    process = consumer("--workers", "1", "--threads", "3", "--queue", "qo", wait_workers=1)
    output = Output(process)
    plain = [enqueue(conn, SLEEP, "qo", seconds=60) for _ in range(2)]
    retried = enqueue(conn, SLEEP, "qo", retries=1, seconds=60)
    for job in (*plain, retried):
        wait_started(conn, job.id)
    process.send_signal(signal.SIGINT)
    output.wait_for("Warm stop: waiting for running jobs")
    process.send_signal(signal.SIGINT)
    out = output.finish()
    assert process.returncode == 0, out
    assert {status(conn, job.id) for job in plain} == {"failed"}
    assert all("stopped by user (cold shutdown)" in failure(conn, job.id) for job in plain)
    assert status(conn, retried.id) == "queued"
    assert worker_names(conn) == set()


def test_a_killed_worker_has_every_running_job_recovered(conn, consumer):
    consumer("--workers", "1", "--threads", "3", "--queue", "qr", wait_workers=1, **FAST)
    name = the_worker(conn)
    plain = [enqueue(conn, SLEEP, "qr", seconds=60) for _ in range(2)]
    retried = enqueue(conn, SLEEP, "qr", retries=1, seconds=1)
    for job in (*plain, retried):
        wait_started(conn, job.id)
    assert running_on(conn, name) == {job.id for job in (*plain, retried)}
    pid = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn).pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: {status(conn, job.id) for job in plain} == {"failed"}, "both jobs to be failed", 15)
    assert all("AbandonedJobError" in failure(conn, job.id) for job in plain)
    wait_for(lambda: status(conn, retried.id) == "finished", "the retried job to run again and finish", 15)
    assert name not in worker_names(conn)


def test_a_consumer_killed_with_its_worker_has_every_job_recovered_by_another_consumers_janitor(conn, consumer):
    first = consumer("--workers", "1", "--threads", "3", "--queue", "qj", wait_workers=1, **FAST)
    name = the_worker(conn)
    plain = [enqueue(conn, SLEEP, "qj", seconds=60) for _ in range(2)]
    retried = enqueue(conn, SLEEP, "qj", retries=1, seconds=1)
    for job in (*plain, retried):
        wait_started(conn, job.id)
    kill_tree(first.pid)  # the consumer and its worker at once: no supervisor is left to recover anything
    consumer("--workers", "1", "--queue", "other", **FAST)  # another consumer, serving another queue
    wait_for(lambda: {status(conn, job.id) for job in plain} == {"failed"}, "its janitor to fail both", 20)
    assert all("AbandonedJobError" in failure(conn, job.id) for job in plain)
    assert status(conn, retried.id) == "queued"  # re-queued for its retry (nobody serves qj now)
    assert name not in worker_names(conn)


def test_burst_and_max_jobs_count_each_job_once(conn, consumer):
    jobs = [enqueue(conn, SLEEP, "qm", seconds=0.3) for _ in range(5)]
    capped = consumer("--workers", "1", "--threads", "4", "--queue", "qm", "--max-jobs", "3")
    out = Output(capped).finish()
    assert capped.returncode == 0, out
    assert sorted(status(conn, job.id) for job in jobs) == ["finished"] * 3 + ["queued"] * 2
    drained = consumer("--workers", "1", "--threads", "4", "--queue", "qm", "--burst")
    out = Output(drained).finish()
    assert drained.returncode == 0, out
    assert {status(conn, job.id) for job in jobs} == {"finished"}
    assert worker_names(conn) == set()


def test_the_consumer_asks_for_jobs_per_worker_and_refuses_bad_counts(env, conn, cli):
    child = spawn(env)
    child.expect_exact("How many workers (1-10)")
    child.send("1\r")
    for answer in ("0", "33", "many"):
        child.expect_exact("Jobs per worker at once (1-32")
        child.send(answer + "\r")
        child.expect_exact("the number of jobs per worker must be a whole number from 1 to 32, not ")
    child.expect_exact("Jobs per worker at once (1-32")
    child.send("\r")  # the default, 1
    child.expect_exact("Queue(s)")
    child.send("q\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn(env)
    child.expect_exact("How many workers")
    child.send("2\r")
    child.expect_exact("Jobs per worker at once")
    child.send("5\r")
    child.expect_exact("Queue(s)")
    child.send("qp\r")
    child.expect_exact("Started 2 workers, up to 5 I/O-bound jobs each on qp")
    wait_for(lambda: len(worker_names(conn)) == 2, "2 workers registered")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    result = cli("consumer_main.py", "--workers", "1", "--threads", "2.5", "--queue", "qp")  # (0, 33: test_bad_input)
    assert result.returncode == 2, result.stderr
    sentence = "error: the number of jobs per worker must be a whole number from 1 to 32, not '2.5'."
    assert result.stderr.strip() == sentence


@pytest.mark.slow
def test_the_lease_lost_stop_stops_every_running_job(conn, consumer, tmp_path):
    """The fence (a worker cut off from the broker) stops all N jobs, not one."""
    port, folder = free_port(), tmp_path / "frozen"
    pid = start_embedded(port, folder)
    try:
        own = redis.Redis(port=port)
        timings = {"WORKBENCH_LIVENESS_TTL_S": "5", "WORKBENCH_HEARTBEAT_S": "0.5", "WORKBENCH_JANITOR_S": "0.5"}
        consumer("--workers", "1", "--threads", "3", "--queue", "qf", REDIS_URL=f"redis://127.0.0.1:{port}/0",
                 **timings)  # fmt: skip
        wait_for(lambda: own.scard("rq:workers") == 1, "the worker")
        jobs = [enqueue(own, SLEEP, "qf", timeout=120, seconds=60) for _ in range(3)]
        for job in jobs:
            wait_for(lambda job=job: own.hget(job.key, "status") == b"started", "the jobs to start")
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: False, "the lease to run out", fencing.timings(timings).lease + 0.8, fail=False)
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: {own.hget(job.key, "status") for job in jobs} == {b"failed"}, "all three failed", 30)
        assert all("lost the broker" in (fetch_job(job.id, own).latest_result().exc_string or "") for job in jobs)
    finally:
        os.kill(pid, signal.SIGCONT)
        stop_embedded(folder)
