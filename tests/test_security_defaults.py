"""Security defaults that span the workbench: JSON only (a pickle payload in a job record runs
nothing in a worker), and credentials that never appear in anything printed or logged."""

from __future__ import annotations

import pickle
import zlib

from task_def.sleep import sleep
from workbench.jobs import make_queue

from .supervision_support import FAST, Output, status, stop_cold
from .support import Gadget, wait_for

SLEEP = f"{sleep.__module__}.{sleep.__qualname__}"


def test_pickle_payload_in_a_job_record_fails_the_job_and_runs_nothing(conn, consumer, tmp_path):
    marker = tmp_path / "unpickled"
    queue = make_queue("queue_one", conn)
    job = queue.enqueue(sleep, seconds=0)
    # Rewrite the queued job as a pickle-serialised call carrying the gadget, in data and in meta.
    conn.hset(job.key, "data", zlib.compress(pickle.dumps((SLEEP, None, (Gadget(str(marker)),), {}))))
    conn.hset(job.key, "meta", pickle.dumps(Gadget(str(marker))))
    good = queue.enqueue(sleep, seconds=0)
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    output = Output(process)
    wait_for(lambda: status(conn, good.id) == "finished", "the job behind the poisoned one")
    wait_for(lambda: conn.zscore("rq:failed:queue_one", job.id) is not None, "the poisoned job to be failed", 10)
    assert not marker.exists()
    assert "died" not in output.text
    stop_cold(process)
    assert not marker.exists()


def test_passwords_in_the_broker_url_never_appear_in_output(broker_url, cli, consumer, conn):
    # The session broker needs no password; a URL with one still authenticates as "default",
    # so give the server a password for this test and take it away afterwards.
    conn.config_set("requirepass", "sekrit-pw")
    try:
        url = broker_url.replace("redis://", "redis://:sekrit-pw@")
        process = consumer("--workers", "1", "--queue", "queue_one", REDIS_URL=url, **FAST)
        output = Output(process)
        results = [
            cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--wait", REDIS_URL=url),
            cli("kill_thread/list_workers.py", REDIS_URL=url),
            cli("kill_thread/kill_workers.py", "--all", REDIS_URL=url),
            cli("producer_main.py", "--task", "sleep", REDIS_URL=url.replace("sekrit-pw", "wrong-pw")),
        ]
        assert [r.returncode for r in results] == [0, 0, 0, 1]
        output.finish(30)
        printed = output.text + "".join(r.stdout + r.stderr for r in results)
        assert "sekrit-pw" not in printed and "wrong-pw" not in printed
        assert ":****@" in results[-1].stderr
    finally:
        conn.execute_command("AUTH", "sekrit-pw")
        conn.config_set("requirepass", "")
