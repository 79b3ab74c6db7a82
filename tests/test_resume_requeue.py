"""Requeue resumes, "restart from zero" does not: the producer's --requeue-failed [--restart], the
dashboard's Requeue and Restart buttons, and how each view says a job resumed."""

from __future__ import annotations

import json
import time

import pytest

from workbench import checkpoint, progress
from workbench.console.producer_view import describe
from workbench.dashboard import create_app
from workbench.jobs import fetch_job, make_queue
from workbench.producer import Snapshot, follow

from .dashboard_support import SLEEP, dashboard_server, make_failed, make_started
from .support import batch_record, job_records, wait_for

SAME_ORIGIN = {"Origin": "http://localhost"}


def stopped_with_a_checkpoint(cli, conn, seconds: float = 6.0) -> tuple[str, str, float]:
    """A sleep job stopped by kill_job.py once it saved a checkpoint: (batch id, job id, checkpoint fraction)."""
    sent = cli("producer_main.py", "--task", "sleep", "--param", f"seconds={seconds}", "--queue", "rq-again", "--json")
    assert sent.returncode == 0, sent.stderr
    batch, [job] = batch_record(sent.stdout)["batch"], job_records(sent.stdout)
    saved = wait_for(lambda: checkpoint.parse(conn.hget(f"rq:job:{job['id']}", checkpoint.FIELD)), "a checkpoint")
    stop = cli("kill_thread/kill_job.py", job["id"])
    assert stop.returncode == 0, stop.stderr
    wait_for(lambda: conn.hget(f"rq:job:{job['id']}", "status") == b"stopped", "the job to be stopped")
    return batch, job["id"], saved.fraction


def test_requeue_failed_resumes_and_restart_starts_from_zero(cli, conn, consumer):
    consumer("--workers", "1", "--queue", "rq-again", wait_workers=1)

    batch, job_id, fraction = stopped_with_a_checkpoint(cli, conn)
    again = cli("producer_main.py", "--batch", batch, "--requeue-failed", "--wait", "--json")
    assert again.returncode == 0, again.stderr
    head, [row] = json.loads(again.stdout.splitlines()[0]), job_records(again.stdout)
    assert (head["requeued"], head["resuming"]) == (1, 1)
    assert row["status"] == "finished" and row["resumed"]["times"] == 1
    assert row["resumed"]["from"] >= fraction
    assert row["result"]["slept_s"] >= 6.0  # the time slept before the stop counts

    batch, job_id, _ = stopped_with_a_checkpoint(cli, conn)
    fresh = cli("producer_main.py", "--batch", batch, "--requeue-failed", "--restart", "--wait")
    assert fresh.returncode == 0, fresh.stderr
    assert "re-queued 1 failed or stopped job(s); from zero (their checkpoints discarded)" in fresh.stderr
    job = fetch_job(job_id, conn)
    assert job.get_status(refresh=True) == "finished"
    assert progress.resumed(job.meta) is None  # it ran from zero
    assert "resumed" not in fresh.stdout

    nothing = cli("producer_main.py", "--batch", batch, "--requeue-failed")
    assert nothing.returncode == 0 and "no failed or stopped job to re-queue" in nothing.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--requeue-failed",), "--requeue-failed puts a batch's failed jobs back, so it needs --batch ID."),
        (("--batch", "0123456789ab", "--restart"), "--restart restarts re-queued jobs from zero, so it needs"),
    ],
)
def test_requeue_flags_out_of_place_are_usage_errors(cli, args, words):
    result = cli("producer_main.py", *args)
    assert result.returncode == 2 and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_live_bar_says_which_running_jobs_resumed():
    snap = Snapshot(4, 1, 0, (0.8, 0.25), ({"times": 1, "from": 0.6667}, None))
    assert describe(snap) == "done 1 · failed 0 · of 4 · running 2: 80% (resumed from 67%) 25%"
    twice = Snapshot(1, 0, 0, (0.9,), ({"times": 2, "from": 0.7},))
    assert describe(twice).endswith("running 1: 90% (resumed 2×, last from 70%)")
    waiting = Snapshot(2, 0, 0, (), (), kept=0.5)  # a job waiting to resume keeps its progress in the bar
    assert waiting.running_progress == 0.5


def test_a_job_waiting_to_resume_keeps_its_progress_in_the_bar(conn):
    resumable, fresh = (make_queue("bar", conn).enqueue(SLEEP, seconds=5) for _ in range(2))
    for job in (resumable, fresh):
        conn.hset(job.key, "status", "started")
        job.meta["progress"] = {"fraction": 0.6, "note": ""}
        job.save_meta()
    steps = follow(conn, [resumable.id, fresh.id], None, interval_s=0.01)
    assert next(steps).running_progress == pytest.approx(1.2)
    # Both interrupted and queued again; only one holds a checkpoint, so only it will carry on from 60 %.
    for job in (resumable, fresh):
        conn.hset(job.key, "status", "queued")
    conn.hset(resumable.key, checkpoint.FIELD, checkpoint.encode({"slept_s": 3.0}, 0.6, 1, 3))
    waiting = next(steps)
    assert waiting.running == () and waiting.kept == pytest.approx(0.6)
    assert waiting.running_progress == pytest.approx(0.6)


# -- the dashboard ---------------------------------------------------------------------------------
def failed_with_a_checkpoint(conn, fraction: float = 0.4):
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=5)
    conn.hset(job.key, checkpoint.FIELD, checkpoint.encode({"slept_s": 2.0}, fraction, 1, 2))
    job.meta.update({"resumed": {"times": 1, "from": 0.2}, "progress": {"fraction": fraction, "note": ""}})
    job.save_meta()
    make_failed(conn, job, "JobStopped: stopped by user")
    return job


def test_dashboard_shows_the_checkpoint_requeue_keeps_it_and_restart_discards_it(broker_url, conn):
    client = create_app(broker_url).test_client()
    kept, dropped = failed_with_a_checkpoint(conn), failed_with_a_checkpoint(conn)

    info = client.get(f"/0/data/job/{kept.id}.json").get_json()
    assert info["checkpoint"]["fraction"] == 0.4 and info["checkpoint"]["writes"] == 2
    assert info["resumed"] == {"times": 1, "from": 0.2}

    assert client.post(f"/job/{kept.id}/requeue", headers=SAME_ORIGIN).get_json() == {"status": "OK"}
    assert checkpoint.parse(conn.hget(kept.key, checkpoint.FIELD)) is not None  # the next run resumes

    assert client.get(f"/job/{dropped.id}/restart").status_code == 405
    assert client.post(f"/job/{dropped.id}/restart", headers={"Origin": "http://evil.example"}).status_code == 403
    answer = client.post(f"/job/{dropped.id}/restart", headers=SAME_ORIGIN).get_json()
    assert answer == {"status": "OK", "message": f"job {dropped.id} re-queued to start from zero."}
    assert conn.hget(dropped.key, checkpoint.FIELD) is None
    assert fetch_job(dropped.id, conn).get_status(refresh=True) == "queued"
    restarted = client.get(f"/0/data/job/{dropped.id}.json").get_json()
    assert restarted["checkpoint"] is None and restarted["resumed"] is None and restarted["progress"] is None

    again = client.post(f"/job/{dropped.id}/restart", headers=SAME_ORIGIN)  # queued now: nothing to restart
    assert again.status_code == 409 and "cannot be restarted" in again.get_json()["error"]
    assert client.post("/job/no-such-job/restart", headers=SAME_ORIGIN).status_code == 404


def test_a_running_job_that_resumed_says_so_in_the_dashboards_lists(broker_url, conn):
    client = create_app(broker_url).test_client()
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=5)
    job.meta.update({"resumed": {"times": 2, "from": 0.5}, "progress": {"fraction": 0.75, "note": "1.2 s left"}})
    job.save_meta()
    make_started(conn, job, "some-worker", time.time() + 60)
    rows = client.get("/0/data/jobs/queue_one/started/8/asc/1.json").get_json()["jobs"]
    [row] = [r for r in rows if r["id"] == job.id]
    assert row["progress"] == {"fraction": 0.75, "note": "1.2 s left", "resumed": "resumed 2×, last from 50%"}


@pytest.mark.browser
def test_job_page_offers_restart_from_zero_beside_requeue(env, conn):
    from .test_dashboard_browser import CHROMIUM_ARGS

    pytest.importorskip("playwright")
    import shutil

    from playwright.sync_api import expect, sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (run .ci/ensure-chromium as root on Debian: apt-get install chromium)")
    job = failed_with_a_checkpoint(conn, 0.4)
    with dashboard_server(env) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/0/view/job/{job.id}")
            expect(page.locator("[data-field=checkpoint]")).to_contain_text("40% saved")
            expect(page.locator("#requeue-job-btn")).to_have_text("Requeue (resume)")
            page.locator("#restart-job-btn").click()
            page.locator("#confirmation-modal-yes").click()
            expect(page.locator("[data-field=status]")).to_have_text("queued")
            expect(page.locator("[data-field=checkpoint]")).to_have_text("-")
            expect(page.locator("#restart-job-btn")).to_be_hidden()
        finally:
            browser.close()
    assert conn.hget(job.key, checkpoint.FIELD) is None
