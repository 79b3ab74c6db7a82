"""Where plain RQ 3.0.0 falls short, with real processes, real signals and a real broker."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from rq.command import send_shutdown_command

from workbench.broker import start_embedded, stop_embedded
from workbench.heartbeat import WORKERS_KEY, alive_key
from workbench.processes import alive
from workbench.recovery import QUARANTINE_KEY

from .supervision_support import (
    FAST,
    Output,
    busy_worker_pid,
    enqueue_sleep,
    failure,
    kill_tree,
    status,
    stop_cold,
    wait_listening,
    wait_started,
    worker_names,
    worker_pids,
)
from .support import child_pids, wait_for


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_killed_worker_is_replaced_its_group_emptied_and_its_job_failed(conn, consumer):
    process = consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    output = Output(process)
    job = enqueue_sleep(conn, 30)
    wait_started(conn, job.id)
    victim = busy_worker_pid(conn, job.id)
    before = worker_names(conn)
    os.kill(victim, signal.SIGKILL)
    output.wait_for("died (killed by signal SIGKILL)", timeout=5)
    wait_for(lambda: len(worker_names(conn)) == 2 and worker_names(conn) != before, "a replacement worker", 5)
    assert status(conn, job.id) == "failed"
    assert "AbandonedJobError" in failure(conn, job.id)
    assert group_gone(victim)  # SimpleWorker forks no horse; nothing of the dead worker runs on
    assert "replaces" in output.text
    stop_cold(process)


def test_killed_worker_with_retries_left_has_its_job_run_again(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    output = Output(process)
    job = enqueue_sleep(conn, 30, retries=1)
    wait_started(conn, job.id)
    os.kill(busy_worker_pid(conn, job.id), signal.SIGKILL)
    output.wait_for("replaces", timeout=5)
    # Its status turns "started" when the run is claimed, its execution is registered a moment later.
    wait_for(lambda: status(conn, job.id) == "started" and conn.zcard("rq:wip:queue_one"), "the job to run again")
    assert len(conn.zrange("rq:wip:queue_one", 0, -1)) == 1  # one execution, not two concurrent ones
    stop_cold(process)


def test_worker_that_ends_on_an_internal_error_is_replaced(conn, consumer):
    # Wrong-typed queue key: RQ's work loop logs "unhandled exception, quitting" and returns normally.
    conn.set("rq:queue:queue_one", "not a list")
    output = Output(consumer("--workers", "1", "--queue", "queue_one"))
    output.wait_for("died (exited with status 70)", timeout=10)
    conn.delete("rq:queue:queue_one")
    wait_for(lambda: len(worker_names(conn)) == 1, "a replacement worker", 10)
    job = enqueue_sleep(conn, 0)
    wait_for(lambda: status(conn, job.id) == "finished", "a job on the replacement")


def test_commanded_stops_are_not_replaced_and_the_consumer_then_exits_0(conn, consumer):
    process = consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    output = Output(process)
    pids = child_pids(process.pid)
    for name in wait_listening(conn, 2):
        send_shutdown_command(conn, name)
    out = output.finish()
    assert process.returncode == 0, out
    assert out.count("stopped on request (not replaced)") == 2
    assert "replaces" not in out
    assert "All workers were stopped on request." in out
    assert worker_names(conn) == set()
    assert not any(alive(pid) for pid in pids)


def test_consumer_killed_9_takes_its_workers_with_it_and_their_jobs_end(conn, consumer):
    process = consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    job = enqueue_sleep(conn, 30)
    wait_started(conn, job.id)
    pids = child_pids(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in pids), "the workers to exit with their consumer", 10)
    assert status(conn, job.id) == "failed"
    assert "consumer supervising this worker exited" in failure(conn, job.id)
    assert worker_names(conn) == set()


def test_jobs_of_a_whole_consumer_killed_9_are_recovered_by_another_consumer(conn, consumer):
    lost = consumer("--workers", "1", "--queue", "lost", wait_workers=1, **FAST)
    job = enqueue_sleep(conn, 60, queue="lost")
    wait_started(conn, job.id)
    ghost = next(iter(worker_names(conn)))
    kill_tree(lost.pid)  # the worker first, then its consumer: nobody is left to clean up
    assert conn.sismember(WORKERS_KEY, ghost)
    # Nobody listens on "lost" any more; a consumer of another queue recovers the job.
    other = consumer("--workers", "1", "--queue", "queue_one", **FAST)
    output = Output(other)
    wait_for(lambda: status(conn, job.id) == "failed", "the abandoned job to be failed", 20)
    assert "AbandonedJobError" in failure(conn, job.id)
    wait_for(lambda: ghost not in worker_names(conn), "the dead worker to be unregistered")
    output.wait_for(f"{ghost} was dead")


def test_expired_started_entry_on_a_queue_nobody_serves_is_cleaned_up(conn, consumer):
    job = enqueue_sleep(conn, 60, queue="orphaned", retries=1)
    # A job some foreign worker started and abandoned: faked as in RQ's own tests (score 100 = long expired).
    conn.hset(job.key, "status", "started")
    conn.lrem("rq:queue:orphaned", 0, job.id)
    conn.zadd("rq:wip:orphaned", {f"{job.id}:exec1": 100})
    consumer("--workers", "1", "--queue", "queue_one", **FAST)
    wait_for(lambda: status(conn, job.id) == "queued", "the abandoned job to be re-queued (it has a retry left)")
    assert conn.zcard("rq:wip:orphaned") == 0


def test_malformed_job_records_are_quarantined_and_workers_do_not_crash_loop(conn, consumer):
    conn.hset("rq:job:fieldless", "foo", "bar")
    conn.set("rq:job:wrongtype", "x")
    conn.hset("rq:job:garbage", mapping={"data": "garbage", "created_at": "nonsense", "status": "queued"})
    conn.sadd("rq:queues", "rq:queue:queue_one")
    conn.rpush("rq:queue:queue_one", "fieldless", "wrongtype", "garbage")
    good = enqueue_sleep(conn, 0)
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    output = Output(process)
    wait_for(lambda: status(conn, good.id) == "finished", "the good job behind the bad ones")
    wait_for(lambda: conn.hlen(QUARANTINE_KEY) == 3, "three quarantined records", 10)
    assert {m.decode() for m in conn.zrange("rq:failed:queue_one", 0, -1)} >= {"wrongtype", "garbage"}
    assert conn.llen("rq:queue:queue_one:intermediate") == 0
    assert "died" not in output.text and "replaces" not in output.text
    after = enqueue_sleep(conn, 0)
    wait_for(lambda: status(conn, after.id) == "finished", "a later job")


def test_job_over_its_timeout_fails_with_a_timeout_and_the_pool_survives(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    output = Output(process)
    slow = enqueue_sleep(conn, 10, timeout=1)
    wait_for(lambda: status(conn, slow.id) == "failed", "the slow job to time out")
    assert "JobTimeoutException" in failure(conn, slow.id)
    after = enqueue_sleep(conn, 0)
    wait_for(lambda: status(conn, after.id) == "finished", "the next job on the same worker")
    assert "died" not in output.text


def test_worker_stuck_past_its_timeout_is_killed_and_its_job_failed_as_timed_out(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    output = Output(process)
    job = enqueue_sleep(conn, 30, timeout=2)
    wait_started(conn, job.id)
    stuck = busy_worker_pid(conn, job.id)
    name = next(n for n, pid in worker_pids(conn).items() if pid == stuck)
    wait_for(lambda: job.id in (conn.get(alive_key(name)) or b"").decode(), "a heartbeat naming the job")
    os.kill(stuck, signal.SIGSTOP)  # SIGALRM cannot be handled now: only the supervisor can end it
    output.wait_for("is stuck past the timeout", timeout=15)
    wait_for(lambda: status(conn, job.id) == "failed", "the stuck job to be failed")
    assert "JobTimeoutException" in failure(conn, job.id) and "did not stop" in failure(conn, job.id)
    wait_for(lambda: not alive(stuck), "the stuck worker to be killed")
    wait_for(lambda: len(worker_pids(conn)) == 1 and stuck not in worker_pids(conn).values(), "a replacement")
    stop_cold(process)


def _outage(killable_broker, consumer, tmp_path, seconds: float) -> None:
    """Take a private broker away for `seconds`, bring it back empty, and check the pool recovers."""
    port, folder, start = killable_broker
    start()
    url = f"redis://127.0.0.1:{port}/0"
    server = redis.Redis.from_url(url)
    process = consumer("--workers", "2", "--queue", "queue_one", REDIS_URL=url, **FAST)
    output = Output(process)
    wait_for(lambda: server.scard("rq:workers") == 2, "2 workers on the private broker")
    names = worker_names(server)
    stop_embedded(folder)
    output.wait_for("broker is unreachable", timeout=10)
    time.sleep(seconds)  # the outage itself
    start_embedded(port, tmp_path / "fresh")  # back, but without its data: every registration is lost
    # No ghosts: every live worker process of the consumer is registered, and only those.
    wait_for(lambda: set(worker_pids(server).values()) == set(child_pids(process.pid)), "workers registered again", 15)
    assert worker_names(server) == names  # the same workers rode the outage out; none was replaced
    output.wait_for("broker is reachable again", timeout=10)
    job = enqueue_sleep(server, 0)
    wait_for(lambda: status(server, job.id) == "finished", "a job after the outage")
    assert "died" not in output.text
    stop_cold(process)
    assert worker_names(server) == set()
    stop_embedded(tmp_path / "fresh")


def test_broker_outage_workers_reconnect_and_reregister(killable_broker, consumer, tmp_path):
    _outage(killable_broker, consumer, tmp_path, seconds=4)


@pytest.mark.slow
def test_broker_outage_of_30_seconds(killable_broker, consumer, tmp_path):
    _outage(killable_broker, consumer, tmp_path, seconds=30)


def test_job_left_in_the_intermediate_list_by_a_dead_worker_is_queued_again(conn, consumer):
    job = enqueue_sleep(conn, 0, queue="handover")
    # A worker took it (LMOVE) and died before starting it, over a minute ago (RQ's own threshold).
    conn.lmove("rq:queue:handover", "rq:queue:handover:intermediate")
    conn.set(f"rq:queue:handover:intermediate:first_seen:{job.id}", time.time() - 120)
    consumer("--workers", "1", "--queue", "queue_one", **FAST)
    wait_for(lambda: conn.lrange("rq:queue:handover", 0, -1) == [job.id.encode()], "the job back in its queue")
    assert status(conn, job.id) == "queued"
