"""The producer driven by flags, as a script would: refusals, --json, big batches, --wait outcomes."""

from __future__ import annotations

import pytest

from workbench.catalog_load import load_catalog
from workbench.jobs import fetch_job, make_queue

from .support import batch_record, job_records

SLEEP = ("--task", "sleep", "--param", "seconds=0")

#: Each is refused with one sentence, exit 2, and the broker untouched.
REFUSED = {
    "unknown task": (["--task", "nope"], "unknown task 'nope'"),
    "internal task": (["--task", "combine_counts"], "unknown task 'combine_counts'"),
    "empty queue": ([*SLEEP, "--queue", ""], "queue name '' is not allowed"),
    "queue with space": ([*SLEEP, "--queue", "a b"], "queue name 'a b' is not allowed"),
    "queue with html": ([*SLEEP, "--queue", "<b>x</b>"], "is not allowed"),
    "limit 1e309": (["--task", "count_primes", "--param", "limit=1e309"], "limit must be a whole number from 2 to"),
    "limit negative": (["--task", "count_primes", "--param", "limit=-5"], "limit must be a whole number"),
    "limit too large": (["--task", "count_primes", "--param", "limit=2000000001"], "not 2,000,000,001"),
    "limit non-numeric": (["--task", "count_primes", "--param", "limit=many"], "not 'many'"),
    "seconds nan": (["--task", "sleep", "--param", "seconds=nan"], "seconds must be a number from"),
    "seconds inf": (["--task", "sleep", "--param", "seconds=inf"], "seconds must be a number from"),
    "unknown param": (["--task", "sleep", "--param", "minutes=1"], "has no parameter 'minutes'"),
    "param twice": (["--task", "sleep", "--param", "seconds=1", "--param", "seconds=2"], "given twice"),
    "negative timeout": ([*SLEEP, "--timeout", "-5"], "timeout must be a whole number from 1 to 86,400"),
    "count 0": ([*SLEEP, "--count", "0"], "count must be a whole number from 1 to 10,000"),
    "split a sleep": ([*SLEEP, "--split", "2"], "--split needs a task with a start..limit range"),
    "split and count": (["--task", "count_primes", "--split", "2", "--count", "2"], "cannot be combined"),
    "split 65": (["--task", "count_primes", "--split", "65"], "split must be a whole number from 1 to 64"),
    "baseline alone": ([*SLEEP, "--baseline"], "--baseline"),
}


@pytest.mark.parametrize("args,reason", REFUSED.values(), ids=REFUSED.keys())
def test_bad_input_is_one_sentence_exit_2_and_nothing_enqueued(cli, conn, args, reason):
    result = cli("producer_main.py", *args)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    assert conn.dbsize() == 0


def test_missing_task_on_closed_stdin_is_exit_2_not_a_hang(cli, conn):
    result = cli("producer_main.py", "--count", "3", timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: missing --task; stdin is not a terminal."
    assert conn.dbsize() == 0


def test_list_tasks_shows_the_catalog_with_types_defaults_and_bounds(cli):
    result = cli("producer_main.py", "--list-tasks")
    assert result.returncode == 0, result.stderr
    for name, spec in load_catalog().items():
        assert (name in result.stdout) != bool(spec.extra.get("internal")), name
    assert "limit: int, default" in result.stdout and "2..2,000,000,000" in result.stdout


def test_json_prints_one_object_per_job_and_warns_when_nobody_listens(cli, conn):
    result = cli("producer_main.py", *SLEEP, "--count", "3", "--queue", "lonely", "--json")
    assert result.returncode == 0, result.stderr
    batch, records = batch_record(result.stdout), job_records(result.stdout)
    assert (batch["task"], batch["queue"], batch["count"]) == ("sleep", "lonely", 3)
    assert [set(r) for r in records] == [{"id", "batch", "queue", "task", "params", "status"}] * 3
    assert {r["batch"] for r in records} == {batch["batch"]}
    assert {(r["queue"], r["task"], r["status"]) for r in records} == {("lonely", "sleep", "queued")}
    assert records[0]["params"] == {"seconds": 0.0}
    assert make_queue("lonely", conn).get_job_ids() == [r["id"] for r in records]
    assert "python consumer_main.py --workers 4 --queue lonely" in result.stderr


def test_flags_reach_the_job_timeout_retries_and_front_of_queue(cli, conn):
    first = cli("producer_main.py", *SLEEP, "--count", "2", "--json")
    front = cli("producer_main.py", *SLEEP, "--timeout", "30", "--retries", "2", "--at-front", "--json")
    assert first.returncode == front.returncode == 0, first.stderr + front.stderr
    [front_record] = job_records(front.stdout)
    front_id = front_record["id"]
    assert make_queue("queue_one", conn).get_job_ids()[0] == front_id
    job = fetch_job(front_id, conn)
    assert (job.timeout, job.retries_left) == (30, 2)
    default = fetch_job(job_records(first.stdout)[0]["id"], conn)
    assert default.timeout == load_catalog()["sleep"].timeout_s  # the task's own, never RQ's silent 180 s


def test_ten_thousand_jobs_go_in_as_one_batch(cli, conn):
    result = cli("producer_main.py", *SLEEP, "--count", "10000", "--queue", "bulk", "--json")
    assert result.returncode == 0, result.stderr
    ids = [record["id"] for record in job_records(result.stdout)]
    assert len(ids) == len(set(ids)) == 10_000
    assert make_queue("bulk", conn).get_job_ids() == ids


def test_wait_shows_results_and_exits_0_when_all_finish(cli, consumer):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    result = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0.3", "--count", "4", "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("finished") >= 4
    assert "4 of 4 finished" in result.stdout and "jobs ran at once on average" in result.stdout
    assert "speed-up" not in result.stdout  # only against a measured one-job baseline
    waited = cli("producer_main.py", "--task", "count_primes", "--param", "limit=100000", "--wait", "--json")
    [record] = job_records(waited.stdout)
    assert set(record) >= {"result", "error", "started_at", "ended_at", "duration_s"}
    assert (record["status"], record["result"]["count"], record["error"]) == ("finished", 9592, None)


def test_wait_exits_1_naming_the_failed_job_and_why(cli, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    result = cli("producer_main.py", "--task", "sleep", "--param", "seconds=5", "--timeout", "1", "--wait", "--json")
    assert result.returncode == 1
    [record] = job_records(result.stdout)
    assert record["status"] == "failed" and "timeout" in record["error"]
    assert f"1 of 1 jobs did not finish: {record['id']} failed" in result.stderr
    assert "Traceback" not in result.stderr
