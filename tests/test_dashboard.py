"""The dashboard over HTTP: each rq-dashboard 0.9.0 defect the issue lists, closed; the command's interface.

Most cases use Flask's test client against the session's real broker (its host is http://localhost);
the command-line cases start `dashboard_main.py` as a user would.
"""

from __future__ import annotations

import json
import pickle
import re
import socket
import time
import zlib

import pytest
import requests
from rq.job import Job

from workbench.dashboard import Credentials, create_app
from workbench.jobs import fetch_job, make_queue

from .dashboard_support import (
    SLEEP,
    XSS_QUEUE,
    XSS_URL,
    dashboard_server,
    enqueue_hostile_job,
    make_failed,
    make_started,
)
from .support import Gadget, free_port, wait_for

SAME_ORIGIN = {"Origin": "http://localhost"}
OTHER_ORIGIN = {"Origin": "http://evil.example"}
PAGES = ["/", "/0/view/jobs/queue_one/queued/8/asc/1", "/0/view/workers"]


@pytest.fixture
def client(broker_url, conn):
    return create_app(broker_url).test_client()


def data(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.data
    return response.get_json()


def queue_row(client, name: str = "queue_one") -> dict:
    return next(q for q in data(client, "/0/data/queues.json")["queues"] if q["name"] == name)


# -- stored XSS ----------------------------------------------------------------------------


def test_hostile_text_is_served_as_data_and_pages_carry_no_markup_from_the_broker(client, conn):
    job = enqueue_hostile_job(conn)
    make_queue(XSS_QUEUE, conn).enqueue(SLEEP, seconds=0)
    info = data(client, f"/0/data/job/{job.id}.json")
    assert XSS_URL in info["description"]  # kept intact, as text
    assert json.loads(info["metadata"]) == {"note": XSS_URL}
    pages = [*PAGES, f"/0/view/job/{job.id}", f"/0/view/jobs/{XSS_QUEUE}/queued/8/asc/1"]
    for path in pages:
        page = client.get(path).get_data(as_text=True)
        assert "<img" not in page, path
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, f"inline script in {path}"
    for name in ("core.js", "charts.js", "dashboard.js"):
        script = client.get(f"/workbench-static/{name}").get_data(as_text=True)
        assert script.count("\n") > 50, name
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", ".html(", "_.template", "eval(", "document.write"):
            assert sink not in script, (name, sink)
        assert "new Function" not in script and "setTimeout(\"" not in script, name


# -- CSRF ----------------------------------------------------------------------------------


def test_state_changes_from_another_origin_or_without_one_are_refused(client, conn):
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    for headers in (OTHER_ORIGIN, {"Referer": "http://evil.example/page"}, {}, {"Origin": "null"}):
        assert client.post(f"/job/{job.id}/delete", headers=headers).status_code == 403, headers
        assert client.post("/queue/queue_one/queued/empty", headers=headers).status_code == 403, headers
    assert conn.exists(job.key)
    assert make_queue("queue_one", conn).count == 1
    assert client.post("/queue/queue_one/queued/empty", headers={"Referer": "http://localhost/0/view/jobs"}).json == {
        "status": "OK"
    }
    assert make_queue("queue_one", conn).count == 0


def test_requeue_all_refuses_get_and_works_by_same_origin_post(client, conn):
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    make_failed(conn, job, "RuntimeError: boom")
    assert client.get("/requeue/queue_one").status_code == 405
    assert client.post("/requeue/queue_one", headers=OTHER_ORIGIN).status_code == 403
    assert fetch_job(job.id, conn).get_status() == "failed"
    assert client.post("/requeue/queue_one", headers=SAME_ORIGIN).json == {"status": "OK", "count": 1}
    assert fetch_job(job.id, conn).get_status() == "queued"


def test_same_origin_delete_and_requeue_of_one_job(client, conn):
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    make_failed(conn, job, "RuntimeError: boom")
    assert client.post(f"/job/{job.id}/requeue", headers=SAME_ORIGIN).json == {"status": "OK"}
    assert make_queue("queue_one", conn).job_ids == [job.id]
    assert client.post(f"/job/{job.id}/delete", headers=SAME_ORIGIN).json == {"status": "OK"}
    assert not conn.exists(job.key)
    assert client.post(f"/job/{job.id}/delete", headers=SAME_ORIGIN).status_code == 404


# -- never unpickle ------------------------------------------------------------------------


def test_job_views_never_unpickle(client, conn, tmp_path):
    marker = tmp_path / "unpickled"
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    conn.hset(job.key, "meta", pickle.dumps(Gadget(str(marker))))
    conn.hset(job.key, "data", zlib.compress(pickle.dumps((SLEEP, None, (Gadget(str(marker)),), {}))))
    assert client.get(f"/0/view/job/{job.id}").status_code == 200
    info = data(client, f"/0/data/job/{job.id}.json")
    assert info["metadata"] == "(stored data is not JSON; not shown)"
    data(client, "/0/data/jobs/queue_one/queued/8/asc/1.json")
    assert client.post(f"/job/{job.id}/requeue", headers=SAME_ORIGIN).status_code in (200, 409)
    assert client.post(f"/job/{job.id}/delete", headers=SAME_ORIGIN).status_code == 200
    assert not marker.exists()
    # The payload is live: RQ's default (pickle) fetch, as rq-dashboard's job page did, runs it.
    conn.hset(job.key, mapping={"meta": pickle.dumps(Gadget(str(marker))), "data": b"x"})
    Job.fetch(job.id, connection=conn)
    assert marker.exists()


# -- dependencies (upstream #522) ----------------------------------------------------------


def test_job_with_dependencies_is_shown_with_them(client, conn):
    queue = make_queue("queue_one", conn)
    first = queue.enqueue(SLEEP, seconds=0)
    second = queue.enqueue(SLEEP, seconds=0, depends_on=first)
    assert client.get(f"/0/view/job/{second.id}").status_code == 200
    info = data(client, f"/0/data/job/{second.id}.json")
    assert info["status"] == "deferred"
    assert info["depends_on"] == [first.id]
    assert info["depends_on_status"] == ["active"]
    first.delete()
    assert data(client, f"/0/data/job/{second.id}.json")["depends_on_status"] == ["expired"]
    assert client.get("/0/view/job/no-such-job").status_code == 404
    assert client.get("/0/data/job/no-such-job.json").status_code == 404


# -- headers -------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(client, conn):
    for path in [*PAGES, "/0/data/queues.json", "/workbench-static/dashboard.js", "/static/css/main.css"]:
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_foreign_host_names_and_other_instances_are_refused(client, broker_url):
    # A DNS-rebinding page reaches 127.0.0.1 under its own name and would count as same-origin.
    assert client.get("/", headers={"Host": "rebind.evil.example:9181"}).status_code == 400
    assert (
        client.post("/requeue/q", headers={"Host": "evil.example", "Origin": "http://evil.example"}).status_code == 400
    )
    assert client.get("/", headers={"Host": "127.0.0.1:9181"}).status_code == 200
    assert client.get("/1/view/queues").status_code == 404
    exposed = create_app(broker_url, Credentials("ada", "s3cret"), trusted_hosts=None).test_client()
    assert exposed.get("/", headers={"Host": "dashboard.example"}, auth=("ada", "s3cret")).status_code == 200


def test_broker_down_is_a_plain_503_not_a_traceback():
    down = create_app(f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = down.get("/0/data/queues.json")
    assert response.status_code == 503
    assert response.get_data(as_text=True) == "The broker is not answering (ConnectionError).\n"


# -- the truth about "started" -------------------------------------------------------------


def test_jobs_of_dead_workers_are_marked_abandoned_and_a_page_view_changes_nothing(client, conn):
    queue = make_queue("queue_one", conn)
    expired, orphan = queue.enqueue(SLEEP, seconds=0), queue.enqueue(SLEEP, seconds=0)
    # A dead worker's entry whose time is up (the fake RQ's own tests use), and one not yet expired.
    make_started(conn, expired, "ghost.w1.aaaa", expires_at=100)
    make_started(conn, orphan, "ghost.w2.bbbb", expires_at=time.time() + 3600)
    row = queue_row(client)
    # No cleanup on a GET (the consumers' janitor recovers them): both are still listed, both abandoned.
    assert row["started_job_registry_count"] == 2
    assert row["failed_job_registry_count"] == 0
    assert row["abandoned_job_count"] == 2
    assert fetch_job(expired.id, conn).get_status() == "started"
    listed = data(client, "/0/data/jobs/queue_one/started/8/asc/1.json")["jobs"]
    assert {job["id"]: job["abandoned"] for job in listed} == {
        expired.id: "its worker ghost.w1.aaaa is gone",
        orphan.id: "its worker ghost.w2.bbbb is gone",
    }
    assert data(client, f"/0/data/job/{orphan.id}.json")["abandoned"] == "its worker ghost.w2.bbbb is gone"
    assert conn.zcard(queue.started_job_registry.key) == 2


# -- beyond rq-dashboard: progress and the consumer's worker columns ----------------------


def test_running_job_shows_progress_and_workers_show_the_consumer_columns(client, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=3)

    def busy_row():
        rows = data(client, "/0/data/workers.json")["workers"]
        return next((r for r in rows if r["current_job_id"] == job.id and r["progress"] not in ("-", "0%")), None)

    row = wait_for(busy_row, "the worker to report the job's progress")
    assert row["state"] == "busy"
    assert re.fullmatch(r"\d+%", row["progress"])
    assert row["queues"] == ["queue_one"]
    assert row["description"].startswith(SLEEP)
    assert row["current_job"]["job_id"] == job.id  # rq-dashboard's own shape for a busy worker
    assert {row["successful_job_count"], row["failed_job_count"]} == {0}
    assert row["job_running_s"] > 0 and row["pid"] > 0 and row["hostname"]
    info = data(client, f"/0/data/job/{job.id}.json")
    assert info["status"] == "started" and info["abandoned"] is None
    assert 0 < info["progress"]["fraction"] <= 1 and info["progress"]["note"].endswith("s left")
    [listed] = data(client, "/0/data/jobs/queue_one/started/8/asc/1.json")["jobs"]
    assert listed["progress"]["fraction"] > 0


# -- auth and the command line -------------------------------------------------------------


def test_basic_auth_guards_every_path(broker_url, conn):
    client = create_app(broker_url, Credentials("ada", "s3cret")).test_client()
    for path in ["/", "/0/data/queues.json", "/static/css/main.css"]:
        refused = client.get(path)
        assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
    assert client.get("/", auth=("ada", "wrong")).status_code == 401
    assert client.get("/", auth=("ada", "s3cret")).status_code == 200


def one_sentence(result) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_exposed_bind_without_password_and_bad_flags_are_usage_errors(cli):
    refused = cli("dashboard_main.py", "--bind", "0.0.0.0", DASHBOARD_USERNAME="", DASHBOARD_PASSWORD="")
    assert refused.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without a password" in one_sentence(refused)
    half = cli("dashboard_main.py", DASHBOARD_USERNAME="ada", DASHBOARD_PASSWORD="")
    assert half.returncode == 2 and "DASHBOARD_PASSWORD" in one_sentence(half)
    argv_password = cli("dashboard_main.py", "--password", "s3cret")
    assert argv_password.returncode == 2 and "--password" in one_sentence(argv_password)
    assert cli("dashboard_main.py", "--port", "70000").returncode == 2


def test_taken_port_is_one_sentence_and_exit_1(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("dashboard_main.py", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in one_sentence(result)


def test_served_dashboard_asks_for_the_password_from_the_environment(env, conn):
    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    with dashboard_server(env, DASHBOARD_USERNAME="ada", DASHBOARD_PASSWORD="s3cret") as base:
        assert requests.get(base + "/", timeout=5).status_code == 401
        page = requests.get(base + "/", auth=("ada", "s3cret"), timeout=5)
        assert page.status_code == 200 and "Content-Security-Policy" in page.headers
        queues = requests.get(base + "/0/data/queues.json", auth=("ada", "s3cret"), timeout=5).json()["queues"]
        assert [(q["name"], q["count"]) for q in queues] == [("queue_one", 1)]
