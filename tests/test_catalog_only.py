"""Only catalog tasks ever run on a workbench worker, and catalog tasks work end to end through one.

Jobs here are enqueued straight through stock RQ (JSON serializer, the route a hostile or careless
client would take) or through the producer, and executed by real worker processes.
"""

from __future__ import annotations

import json
import os

from rq import Callback, Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from workbench import progress
from workbench.jobs import fetch_job

from .outsider import MARKER_DIR_ENV
from .scrape_pages import serve_pages
from .support import free_port, wait_for

QUEUE = "queue_one"


def ended(conn, job_id: str) -> Job:
    def done():
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        return job if job.get_status() in ("finished", "failed") else None

    return wait_for(done, f"job {job_id} to end")


def last_line(job: Job) -> str:
    return (job.latest_result().exc_string or "").strip().splitlines()[-1]


def test_functions_outside_the_catalog_never_run(conn, consumer, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    consumer("--workers", "1", "--queue", QUEUE, wait_workers=1, **{MARKER_DIR_ENV: str(markers)})
    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    refused = {
        queue.enqueue("os.getcwd").id: "not a catalog task on this worker: os.getcwd",
        queue.enqueue("tests.outsider.touch", "ran").id: "not a catalog task on this worker: tests.outsider.touch",
        queue.enqueue(
            "task_def.primes.count_primes", limit=100, on_success=Callback("tests.outsider.callback")
        ).id: "not a catalog task on this worker: callback tests.outsider.callback",
        queue.enqueue(
            "task_def.primes.count_primes", limit=100, on_failure=Callback("tests.outsider.callback")
        ).id: "not a catalog task on this worker: callback tests.outsider.callback",
        queue.enqueue("task_def.primes.count_primes", 100).id: "catalog task count_primes takes named parameters only",
        queue.enqueue("task_def.scrape.scrape", url="file:///etc/passwd").id: (
            "refused parameters for scrape: url: only http and https URLs can be scraped, not file:."
        ),
        queue.enqueue("task_def.primes.count_primes", limit=10**12).id: (
            "refused parameters for count_primes: limit must be a whole number from 2 to 2,000,000,000, "
            "not 1,000,000,000,000."
        ),
    }
    # The same route works for a catalog task, so the refusals above are about the function alone.
    allowed = queue.enqueue("task_def.primes.count_primes", limit=1000)
    assert ended(conn, allowed.id).return_value() == {"start": 0, "limit": 1000, "count": 168}
    for job_id, sentence in refused.items():
        job = ended(conn, job_id)
        assert job.get_status() == "failed"
        assert last_line(job) == sentence
    assert list(markers.iterdir()) == []  # nothing ran, and the outsider module was not even imported

    # Control: stock RQ's own worker, on the same kind of job, imports and runs the outsider.
    control = Queue("control", connection=conn, serializer=JSONSerializer)
    job = control.enqueue("tests.outsider.touch", "ran")
    os.environ[MARKER_DIR_ENV] = str(markers)
    try:
        SimpleWorker([control], connection=conn, serializer=JSONSerializer).work(burst=True)
    finally:
        del os.environ[MARKER_DIR_ENV]
    assert job.get_status() == "finished"
    assert (markers / "ran").exists()


def test_tasks_end_to_end_through_the_producer_and_a_worker(cli, consumer, conn):
    with serve_pages() as pages:
        consumer("--workers", "2", "--queue", QUEUE, wait_workers=2, SCRAPE_ALLOWED_HOSTS=pages.host)
        runs = {
            "scrape": ["--param", f"url={pages.base}/redirect/2"],
            "fibonacci": ["--param", "n=1000"],
            "monte_carlo_pi": ["--param", "samples=20000", "--param", "seed=3"],
            "sha256_chain": ["--param", "rounds=1", "--param", "data=abc"],
        }
        results = {}
        for task, params in runs.items():
            done = cli("producer_main.py", "--task", task, *params, "--wait", "--json")
            assert done.returncode == 0, done.stderr
            (record,) = [json.loads(line) for line in done.stdout.splitlines() if '"finished"' in line]
            results[task] = record["result"]
            assert progress.read(fetch_job(record["id"], conn).meta) == 1.0, task
        page = results["scrape"]
        assert (page["status"], page["title"], page["redirects"]) == (200, "Fixture page", 2)
        assert page["final_url"] == f"{pages.base}/page"
        assert results["fibonacci"]["digits"] == 209  # F(1000) has 209 digits
        assert results["fibonacci"]["last_digits"] == "76137795166849228875"  # F(1000) mod 10^20
        assert results["sha256_chain"]["digest"].startswith("ba7816bf")
        assert results["monte_carlo_pi"]["samples"] == 20000

        # A refusal inside the worker: the job fails and the producer's error column is the sentence.
        port = free_port()
        refused = cli("producer_main.py", "--task", "scrape", "--param", f"url=http://localhost:{port}/", "--wait",
                      "--json")  # fmt: skip
        assert refused.returncode == 1
        (record,) = [json.loads(line) for line in refused.stdout.splitlines() if '"failed"' in line]
        assert record["error"] == (
            f"refused http://localhost:{port}/: localhost resolves to 127.0.0.1, which is not a public address; "
            f"name localhost:{port} in SCRAPE_ALLOWED_HOSTS to allow it."
        )
        assert "Traceback" not in refused.stderr
        assert pages.requests == [("/redirect/2", pages.host), ("/redirect/1", pages.host), ("/page", pages.host)]

    # The producer refuses a bad URL itself, before anything is enqueued.
    bad = cli("producer_main.py", "--task", "scrape", "--param", "url=gopher://127.0.0.1:6379/_x")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "only http and https URLs can be scraped, not gopher:" in bad.stderr
    assert conn.llen(f"rq:queue:{QUEUE}") == 0
