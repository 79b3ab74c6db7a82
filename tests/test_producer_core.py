"""The producer's guarantees that no prompt shows: whole batches, and waits that end."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from workbench.catalog_load import load_catalog
from workbench.errors import WorkbenchError
from workbench.jobs import make_queue
from workbench.producer import enqueue, follow, make_batch

from .support import ROOT, wait_for


def test_waiting_on_a_queue_nobody_serves_gives_up_and_leaves_the_jobs(conn):
    jobs = enqueue(conn, make_batch(load_catalog()["sleep"], {}, queue="nobody", count=2))
    with pytest.raises(WorkbenchError, match="no worker has listened on nobody for 0.3 s and 2 jobs are still waiting"):
        list(follow(conn, [job.id for job in jobs], "nobody", interval_s=0.05, unserved_limit_s=0.3))
    assert make_queue("nobody", conn).count == 2


def test_ctrl_c_during_a_big_enqueue_leaves_all_or_nothing(env, conn):
    producer = subprocess.Popen(
        [sys.executable, "producer_main.py", "--task", "sleep", "--count", "10000", "--queue", "bulk"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    before = {client["id"] for client in conn.client_list()}
    wait_for(lambda: {client["id"] for client in conn.client_list()} - before, "the producer to connect", interval=0.01)
    producer.send_signal(signal.SIGINT)  # while it builds or sends the batch
    out, err = producer.communicate(timeout=60)
    assert producer.returncode == 130, err  # interrupted, as shells count Ctrl-C
    assert "Traceback" not in err
    printed = out.split()
    assert len(printed) in (0, 10_000)
    assert make_queue("bulk", conn).get_job_ids() == printed
