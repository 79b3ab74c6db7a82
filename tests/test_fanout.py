"""Fan-out: one count_primes range split across workers and combined through RQ dependencies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.control import stop_job
from workbench.fanout import split_range
from workbench.jobs import fetch_job, make_queue

from .support import ROOT, job_records, wait_for


@pytest.mark.parametrize("start,limit,parts", [(0, 10, 3), (0, 2_000_000_000, 64), (5, 9, 4), (17, 1_000_003, 7)])
def test_split_range_covers_the_range_in_contiguous_near_equal_chunks(start, limit, parts):
    chunks = split_range(start, limit, parts)
    assert len(chunks) == parts
    assert chunks[0][0] == start and chunks[-1][1] == limit
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    widths = [high - low for low, high in chunks]
    assert min(widths) >= 1 and max(widths) - min(widths) <= 1


def test_split_counts_agree_with_known_prime_counts_and_report_the_speed_up(cli, consumer, conn):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    result = cli("producer_main.py", "--task", "count_primes", "--param", "limit=10000000", "--split", "4",
                 "--wait", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    *chunks, combined = job_records(result.stdout)
    assert [c["params"]["start"] for c in chunks] == [0, 2_500_000, 5_000_000, 7_500_000]
    assert sum(c["result"]["count"] for c in chunks) == 664_579  # pi(10^7)
    assert combined["task"] == "combine_counts" and combined["status"] == "finished"
    assert combined["result"]["count"] == 664_579 and combined["result"]["chunks"] == 4
    assert combined["result"]["chunk_time_s"] == pytest.approx(sum(c["duration_s"] for c in chunks), abs=0.01)
    job = fetch_job(combined["id"], conn)
    assert set(job.dependency_ids) == {c["id"] for c in chunks}  # RQ's own dependencies did the joining
    # The same, for a person: the combined answer and speed-up figures, including one timed job.
    shown = cli("producer_main.py", "--task", "count_primes", "--param", "limit=1000000", "--split", "2", "--wait",
                "--baseline")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "primes in [0, 1,000,000): 78,498 from 2 chunks" in shown.stdout
    assert "against one job" in shown.stdout


def test_combiner_enqueued_by_hand_fails_with_one_sentence(consumer, conn):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    job = make_queue("queue_one", conn).enqueue("task_def.combine.combine_counts")
    wait_for(lambda: job.get_status(refresh=True) == "failed", "the lone combiner to fail")
    assert (
        job.latest_result()
        .exc_string.strip()
        .splitlines()[-1]
        .endswith("combine_counts only runs as the last step of a split (producer --split N).")
    )


def test_stopped_chunks_mean_exit_1_naming_them_and_no_combiner_left_behind(env, consumer, conn):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    producer = subprocess.Popen(
        [sys.executable, "producer_main.py", "--task", "count_primes", "--param", "limit=2000000000", "--split", "2",
         "--wait", "--json"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = make_queue("queue_one", conn).started_job_registry
    running = wait_for(lambda: len(started.get_job_ids()) == 2 and started.get_job_ids(), "both chunks to start")
    for job_id in running:
        stop_job(conn, job_id)  # what kill_thread/kill_job.py does
    try:
        out, err = producer.communicate(timeout=30)
    finally:
        if producer.poll() is None:  # a hang is the failure this test looks for: do not leave it running
            producer.kill()
            producer.wait()
    assert producer.returncode == 1, err
    records = job_records(out)
    assert {r["id"] for r in records[:2]} == set(running)
    assert records[2]["task"] == "combine_counts" and records[2]["status"] in ("canceled", "failed")
    assert "3 of 3 jobs did not finish" in err and all(job_id in err for job_id in running)
    assert make_queue("queue_one", conn).deferred_job_registry.count == 0
