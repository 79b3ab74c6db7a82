"""kill_job.py and list_workers.py's edges: one job stopped wherever it runs, plain answers otherwise."""

from __future__ import annotations

from workbench.jobs import fetch_job
from workbench.processes import alive

from .support import child_pids, free_port, wait_for
from .test_kill_workers import enqueue_sleep, plain_worker, wait_started, workers_json  # noqa: F401 - a fixture


def test_stopping_a_job_on_a_consumer_worker_leaves_the_worker_running(cli, conn, consumer):
    consumer("--workers", "1", "--queue", "qa", wait_workers=1)
    job_id = enqueue_sleep(conn, "qa", 60)
    runner = wait_started(conn, job_id)

    stopped = cli("kill_thread/kill_job.py", job_id)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped job {job_id} on worker {runner}; it is now stopped"
    assert fetch_job(job_id, conn).get_status() == "stopped"

    after = enqueue_sleep(conn, "qa", 0)  # the worker carries on with the next job
    wait_for(lambda: fetch_job(after, conn).get_status() == "finished", "the next job to finish")
    (row,) = workers_json(cli)
    assert row["name"] == runner and row["failed"] == 1

    again = cli("kill_thread/kill_job.py", job_id)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: job {job_id} is stopped, not running; only a running job can be stopped."


def test_stopping_a_job_on_a_plain_rq_worker_kills_only_its_horse(cli, conn, plain_worker):  # noqa: F811
    worker = plain_worker("plain-job", "qp")
    job_id = enqueue_sleep(conn, "qp", 60)
    wait_started(conn, job_id)
    horses = wait_for(lambda: child_pids(worker.pid), "the work horse to fork")

    stopped = cli("kill_thread/kill_job.py", job_id)
    assert stopped.returncode == 0, stopped.stderr
    assert fetch_job(job_id, conn).get_status() == "stopped"
    wait_for(lambda: not any(alive(pid) for pid in horses), "the work horse to exit")
    assert worker.poll() is None
    assert [row["name"] for row in workers_json(cli)] == ["plain-job"]


def test_unknown_and_waiting_jobs_are_one_sentence(cli, conn):
    queued = enqueue_sleep(conn, "nobody-listens", 1)
    cases = {
        "no-such-job": "error: no job with id 'no-such-job' exists in the broker.",
        queued: f"error: job {queued} is queued, not running; only a running job can be stopped.",
    }
    for job_id, sentence in cases.items():
        result = cli("kill_thread/kill_job.py", job_id)
        assert result.returncode == 1
        assert result.stderr.strip() == sentence
    assert fetch_job(queued, conn).get_status() == "queued"  # untouched
    usage = cli("kill_thread/kill_job.py")
    assert usage.returncode == 2 and "JOB_ID" in usage.stderr


def test_list_with_no_workers_and_with_no_broker(cli, conn):
    empty = cli("kill_thread/list_workers.py")
    assert empty.returncode == 0
    assert "No workers are registered" in empty.stderr
    assert cli("kill_thread/list_workers.py", "--json").stdout == ""
    nothing = cli("kill_thread/kill_workers.py", "--all")
    assert nothing.returncode == 0 and "nothing to stop" in nothing.stderr

    for script in ("list_workers.py", "kill_workers.py", "kill_job.py"):
        extra = {"kill_workers.py": ["--all"], "kill_job.py": ["some-job"]}.get(script, [])
        down = cli(f"kill_thread/{script}", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", *extra)
        assert down.returncode == 1
        assert len(down.stderr.strip().splitlines()) == 1 and "cannot reach the broker" in down.stderr


def test_a_key_that_is_no_job_record_is_named_for_what_it_is(cli, conn):
    conn.set("rq:job:plain-string", "hello")
    conn.hset("rq:job:forged-status", mapping={"status": "bogus", "data": "x"})
    conn.hset("rq:job:no-data", mapping={"status": "started", "worker_name": "w1"})
    expected = {
        "plain-string": "error: the broker's key for job 'plain-string' holds a string, not a job record "
        "(forged or written by something else); there is no job to stop.",
        "forged-status": "error: job 'forged-status' has a record in the broker that cannot be read "
        "('bogus' is not a valid JobStatus); it is not a job the workbench can stop.",
        "no-data": "error: job 'no-data' has a record in the broker but no task data in it (forged or half "
        "written); it cannot be running, so there is nothing to stop.",
    }
    for job_id, sentence in expected.items():
        result = cli("kill_thread/kill_job.py", job_id)
        assert (result.returncode, result.stderr.strip(), result.stdout) == (1, sentence, ""), job_id
