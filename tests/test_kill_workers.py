"""kill_thread against real workers: the consumer's supervised ones and a plain `rq worker`.

Every worker here is a real process on the session's private broker; every stop goes through
RQ's commands over the broker, exactly as it would for a worker on another machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from rq import Retry, Worker
from rq.command import send_stop_job_command

from workbench.jobs import SERIALIZER, fetch_job, make_queue
from workbench.processes import alive

from .support import ROOT, child_pids, wait_for

SLEEP = "task_def.sleep.sleep"


def enqueue_sleep(conn, queue: str, seconds: float, retries: int = 0) -> str:
    retry = Retry(max=retries) if retries else None
    return make_queue(queue, conn).enqueue(SLEEP, kwargs={"seconds": seconds}, retry=retry).id


def wait_started(conn, job_id: str) -> str:
    """Wait until a worker runs the job; return that worker's name."""
    wait_for(lambda: fetch_job(job_id, conn).get_status() == "started", f"job {job_id} to start")
    return fetch_job(job_id, conn).worker_name


def workers_json(cli) -> list[dict]:
    listed = cli("kill_thread/list_workers.py", "--json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def finish(process: subprocess.Popen, timeout: float = 20) -> tuple[int, str]:
    """Wait for a consumer to exit on its own; return its exit code and output."""
    code = process.wait(timeout)
    return code, process.stdout.read()


def shown_stopped(output: str, names: set[str]) -> bool:
    """Whether the consumer's last live-view table shows each of `names` as stopped."""
    table = output.rsplit("Workers", 1)[-1]
    return all(any(name in line and "stopped" in line for line in table.splitlines()) for name in names)


@pytest.fixture
def plain_worker(env, conn):
    """Start a plain `rq worker` (forking, JSON serialiser) by CLI; killed by pid after the test."""
    started: list[subprocess.Popen] = []

    def start(name: str, queue: str) -> subprocess.Popen:
        rq_cli = os.path.join(os.path.dirname(sys.executable), "rq")
        process = subprocess.Popen(
            [rq_cli, "worker", "--url", env["REDIS_URL"], "--serializer", "rq.serializers.JSONSerializer"]
            + ["--name", name, "--path", str(ROOT), queue],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(process)
        wait_for(lambda: conn.sismember("rq:workers", f"rq:worker:{name}"), f"plain worker {name} registered")
        return process

    yield start
    for process in started:
        for pid in [process.pid, *child_pids(process.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(5)


def test_list_shows_every_worker_in_the_broker(cli, conn, consumer, plain_worker):
    consumer("--workers", "1", "--queue", "qa", wait_workers=1)
    plain = plain_worker("plain-lister", "qp")
    job_id = enqueue_sleep(conn, "qa", 30)
    runner = wait_started(conn, job_id)

    rows = {row["name"]: row for row in workers_json(cli)}
    assert set(rows) == {runner, "plain-lister"}
    assert rows["plain-lister"]["pid"] == plain.pid
    assert rows["plain-lister"]["queues"] == ["qp"]
    assert rows[runner]["queues"] == ["qa"]
    assert rows[runner]["state"] == "busy" and rows[runner]["current_job"] == job_id
    assert rows[runner]["hostname"] and rows[runner]["last_heartbeat"]

    table = cli("kill_thread/list_workers.py")
    assert table.returncode == 0, table.stderr
    for text in (runner, "plain-lister", job_id, "busy", "qp"):
        assert text in table.stdout
    send_stop_job_command(conn, job_id, serializer=SERIALIZER)  # so the consumer's warm stop is quick


def test_warm_stop_by_queue_then_by_name_leaves_the_consumers_workers_stopped(cli, conn, consumer):
    first = consumer("--workers", "2", "--queue", "qa", wait_workers=2)
    second = consumer("--workers", "1", "--queue", "qb", wait_workers=3)
    running = enqueue_sleep(conn, "qa", 1.5)
    wait_started(conn, running)
    names_a = {row["name"] for row in workers_json(cli) if row["queues"] == ["qa"]}
    (name_b,) = {row["name"] for row in workers_json(cli) if row["queues"] == ["qb"]}

    by_queue = cli("kill_thread/kill_workers.py", "--queue", "qa")
    assert by_queue.returncode == 0, by_queue.stderr
    assert {line.split()[1] for line in by_queue.stdout.splitlines()} == names_a
    assert fetch_job(running, conn).get_status() == "finished"  # warm: the running job finished first
    code, output = finish(first)
    assert code == 0
    assert "replaces a crashed worker" not in output
    assert shown_stopped(output, names_a)
    assert {row["name"] for row in workers_json(cli)} == {name_b}  # the other queue's worker is untouched

    by_name = cli("kill_thread/kill_workers.py", "--name", name_b)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith(f"stopped {name_b} ")
    code, output = finish(second)
    assert code == 0  # every worker stopped on request: the consumer ends, successfully
    assert shown_stopped(output, {name_b})
    assert workers_json(cli) == []


def test_force_stops_long_jobs_at_once_failing_or_requeueing_them(cli, conn, consumer):
    process = consumer("--workers", "2", "--queue", "qa", wait_workers=2)
    once = enqueue_sleep(conn, "qa", 60)
    retried = enqueue_sleep(conn, "qa", 60, retries=1)
    wait_started(conn, once), wait_started(conn, retried)
    rows = workers_json(cli)

    forced = cli("kill_thread/kill_workers.py", "--all", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(forced.stdout.splitlines()) == 2
    assert f"its job {once} ended failed" in forced.stdout
    assert f"its job {retried} was re-queued" in forced.stdout
    failed = fetch_job(once, conn)
    assert failed.get_status() == "failed"
    assert "stopped by user" in failed.latest_result().exc_string
    assert fetch_job(retried, conn).get_status() == "queued"
    assert make_queue("qa", conn).started_job_registry.get_job_ids() == []
    code, output = finish(process)
    assert code == 0
    assert shown_stopped(output, {row["name"] for row in rows})
    assert not any(alive(row["pid"]) for row in rows)


def test_force_on_a_plain_rq_worker_kills_its_work_horse(cli, conn, plain_worker):
    worker = plain_worker("plain-forced", "qp")
    job_id = enqueue_sleep(conn, "qp", 60)
    wait_started(conn, job_id)
    horses = wait_for(lambda: child_pids(worker.pid), "the work horse to fork")

    # Asked twice to stop warm: for `rq worker` a second shutdown would mean a cold stop, so none is sent.
    for _ in range(2):
        warm = cli("kill_thread/kill_workers.py", "--name", "plain-forced", "--grace", "1.5")
        assert warm.returncode == 1
        assert f"plain-forced (still running job {job_id})" in warm.stderr
    assert fetch_job(job_id, conn).get_status() == "started"
    assert all(alive(pid) for pid in horses)

    forced = cli("kill_thread/kill_workers.py", "--name", "plain-forced", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("stopped plain-forced ")
    assert fetch_job(job_id, conn).get_status() == "failed"
    assert worker.wait(10) == 0
    assert not any(alive(pid) for pid in horses)


def test_workers_that_do_not_leave_in_time_are_named(cli, conn, consumer):
    process = consumer("--workers", "1", "--queue", "qa", wait_workers=1)
    job_id = enqueue_sleep(conn, "qa", 60)
    runner = wait_started(conn, job_id)
    Worker(["qa"], name="ghost", connection=conn, serializer=SERIALIZER).register_birth()  # registered, no process

    slow = cli("kill_thread/kill_workers.py", "--all", "--grace", "0.5")
    assert slow.returncode == 1
    assert len(slow.stderr.splitlines()) == 2  # the "Stopping ..." note and one error sentence
    assert f"{runner} (still running job {job_id})" in slow.stderr
    assert "ghost (not listening for commands" in slow.stderr

    forced = cli("kill_thread/kill_workers.py", "--name", runner, "--force")
    assert forced.returncode == 0, forced.stderr
    assert finish(process)[0] == 0


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ((), 2, "one of the arguments --all --queue --name --host is required"),
        (("--all", "--name", "x"), 2, "not allowed with"),
        (("--name", "nobody"), 1, "no worker named 'nobody'"),
        (("--queue", "empty"), 1, "no registered worker listens on queue 'empty'"),
        (("--host", "nowhere"), 1, "no registered worker runs on host 'nowhere'"),
        (("--all", "--grace", "soon"), 2, "--grace must be a number"),
    ],
)
def test_bad_selectors_are_one_sentence(cli, conn, args, code, words):
    result = cli("kill_thread/kill_workers.py", *args)
    assert result.returncode == code
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_workers_stopped_while_starting_up_stay_stopped(cli, conn, consumer):
    # Stopped as soon as they are registered: none is taken for crashed and replaced.
    process = consumer("--workers", "3", "--queue", "qa", wait_workers=3)
    names = {key.decode().rsplit(":", 1)[-1] for key in conn.smembers("rq:workers")}
    stopped = cli("kill_thread/kill_workers.py", "--all")
    assert stopped.returncode == 0, stopped.stderr
    code, output = finish(process)
    assert code == 0
    assert shown_stopped(output, names)
