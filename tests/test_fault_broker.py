"""Broker faults: an embedded broker killed -9 mid-load keeps its jobs (AOF); a restart without
persistence is noticed and counted; an enqueue while the broker is down is refused, never "queued"."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis

from workbench.broker_watch import BrokerWatch
from workbench.defaults import RESTART_CHECK_INTERVAL_S
from workbench.jobs import make_queue

from .support import ROOT, job_records, kill_broker, wait_for


def test_restart_without_persistence_is_noticed_and_counted(killable_broker, cli):
    port, folder, start = killable_broker
    connection = start("--appendonly", "no")
    url = f"redis://127.0.0.1:{port}/0"
    done = cli("producer_main.py", "--task", "sleep", "--param", "seconds=1", "--count", "7", REDIS_URL=url)
    assert done.returncode == 0, done.stderr
    watch = BrokerWatch(connection)
    assert watch.check() is None
    kill_broker(folder)
    with pytest.raises(redis.ConnectionError):
        watch.check()
    start("--appendonly", "no")
    restart = watch.check()
    assert restart is not None and restart.lost_jobs == 7
    assert "7 queued or running job(s)" in restart.sentence()
    assert watch.check() is None


def test_killed_embedded_broker_keeps_its_jobs_with_aof(killable_broker, cli):
    port, folder, start = killable_broker
    connection = start()
    url = f"redis://127.0.0.1:{port}/0"
    done = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--count", "500", "--json",
               REDIS_URL=url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ids = [record["id"] for record in job_records(done.stdout)]
    connection.close()
    # appendfsync everysec: a write acknowledged more than a second ago is on disk.
    wait_for(lambda: (folder / "appendonlydir").exists(), "the append-only file")
    time.sleep(1.5)
    kill_broker(folder)
    down = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--json", REDIS_URL=url)
    assert down.returncode == 1
    assert down.stdout == ""
    assert "cannot reach the broker" in down.stderr and "Traceback" not in down.stderr
    restarted = start()
    queue = make_queue("queue_one", restarted)
    assert queue.count == 500
    assert set(queue.get_job_ids()) == set(ids)


def test_consoles_notice_a_restart_without_persistence_and_count_the_lost_jobs(killable_broker, consumer, env):
    from .supervision_support import FAST, Output, stop_cold

    port, folder, start = killable_broker
    connection = start("--appendonly", "no")
    url = f"redis://127.0.0.1:{port}/0"
    process = consumer("--workers", "1", "--queue", "queue_one", REDIS_URL=url, **FAST)
    output = Output(process)
    wait_for(lambda: connection.scard("rq:workers") == 1, "the worker to register")
    producer = subprocess.Popen(
        [sys.executable, "producer_main.py", "--task", "sleep", "--param", "seconds=20", "--count", "3",
         "--wait", "--json"],
        cwd=ROOT, env={**env, "REDIS_URL": url}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: connection.zcard("rq:wip:queue_one") == 1, "one job to start")
    time.sleep(RESTART_CHECK_INTERVAL_S + 1)  # let the consumer's census see 2 queued + 1 running
    kill_broker(folder)
    connection = start("--appendonly", "no")
    out, err = producer.communicate(timeout=30)
    assert producer.returncode == 1
    assert "the broker restarted" in err and "Traceback" not in err
    assert [record["error"] for record in job_records(out)] == ["lost: the broker restarted without keeping it"] * 3
    output.wait_for("the broker restarted", timeout=10)
    assert "3 queued or running job(s) it held before are gone" in output.text
    wait_for(lambda: connection.scard("rq:workers") == 1, "the worker to re-register", 15)
    stop_cold(process)
