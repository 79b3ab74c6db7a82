"""Issue 12 against the real dashboard over HTTP: records forged with raw redis commands, credentials in
the broker URL, malformed page parameters, oversized records, IPv6 loopback, and deletes of running jobs."""

from __future__ import annotations

import base64
import json
import pickle
import socket
import time
import uuid
import zlib

import pytest

from workbench.jobs import fetch_job, make_queue

from .dashboard_support import SLEEP, dashboard_server, make_failed
from .supervision_support import FAST, enqueue_sleep, status, wait_started
from .support import wait_for

#: Every view a person or a script reads, for a queue called queue_one.
LISTS = ["queued", "started", "failed", "finished", "deferred", "scheduled", "canceled"]
PAGES = [
    "/",
    "/0/view/workers",
    "/0/view/failed",
    "/0/view/batches",
    "/0/view/trends",
    "/0/view/search?q=sleep",
    *(f"/0/view/jobs/queue_one/{name}/8/asc/1" for name in LISTS),
]
DATA = [
    "/0/data/queues.json",
    "/0/data/workers.json",
    "/0/data/failed.json",
    "/0/data/batches.json",
    "/0/data/trends.json",
    "/0/data/search.json?q=sleep",
    "/metrics",
    *(f"/0/data/jobs/queue_one/{name}/8/asc/1.json" for name in LISTS),
    *(f"/0/data/jobs/queue_one/{name}/8/dsc/1.json" for name in LISTS),
]


def everything(dashboard, *job_ids: str) -> dict[str, str]:
    """Every page and JSON view (and each job's page and JSON), each answered 200: path -> body."""
    bodies = {}
    paths = [*PAGES, *DATA, *(f"/0/view/job/{i}" for i in job_ids), *(f"/0/data/job/{i}.json" for i in job_ids)]
    for path in paths:
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        bodies[path] = response.text
    return bodies


# -- class 3: credentials in the broker URL are masked everywhere ------------------------------------


@pytest.fixture
def password(conn):
    """The session broker, with a password for this test only."""
    conn.config_set("requirepass", "sekrit-pw")
    try:
        yield "sekrit-pw"
    finally:
        conn.execute_command("AUTH", "sekrit-pw")
        conn.config_set("requirepass", "")


@pytest.mark.parametrize("form", ["query", "userinfo"])
def test_broker_credentials_appear_in_no_page_json_or_start_up_line(env, conn, password, form):
    plain = env["REDIS_URL"]
    url = (
        f"{plain}?password={password}" if form == "query" else plain.replace("redis://", f"redis://default:{password}@")
    )
    authed = conn.__class__.from_url(url)
    job = make_queue("queue_one", authed).enqueue(SLEEP, seconds=0)
    with dashboard_server(env, REDIS_URL=url) as dashboard:
        bodies = everything(dashboard, job.id)
        startup = dashboard.startup
    assert "Using the Valkey at redis://" in startup
    for path, body in {**bodies, "start-up line": startup}.items():
        assert password not in body, path
    home = bodies["/"]
    assert ("password=****" in home) if form == "query" else ("default:****@" in home)


# -- class 4: malformed page parameters are 400 with a sentence ---------------------------------------


def test_malformed_page_sizes_and_numbers_are_400_with_a_sentence(env, conn):
    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    bad = [
        ("/0/data/jobs/queue_one/queued/0/asc/1.json", "page size"),
        ("/0/data/jobs/queue_one/queued/-5/asc/1.json", "page size"),
        ("/0/data/jobs/queue_one/queued/ten/asc/1.json", "page size"),
        ("/0/data/jobs/queue_one/failed/1e3/asc/1.json", "page size"),
        ("/0/data/jobs/queue_one/finished/100000/asc/1.json", "page size"),
        ("/0/data/jobs/queue_one/queued/8/asc/0.json", "page number"),
        ("/0/data/jobs/queue_one/queued/8/asc/-1.json", "page number"),
        ("/0/data/jobs/queue_one/queued/8/asc/x.json", "page number"),
        ("/0/data/jobs/queue_one/queued/8/sideways/1.json", "sort order"),
        ("/0/data/jobs/queue_one/nowhere/8/asc/1.json", "no job list"),
        ("/0/data/failed.json?per_page=0", "per page"),
        ("/0/data/failed.json?page=-2", "page"),
        ("/0/data/batches.json?limit=abc", "limit"),
        ("/0/data/batch/abcdefabcdef.json?page=0", "page"),
        ("/0/data/search.json?q=", "job id"),
    ]
    with dashboard_server(env) as dashboard:
        for path, word in bad:
            response = dashboard.get(path)
            assert response.status_code == 400, path
            sentence = response.json()["error"]
            assert word in sentence and sentence.endswith("."), (path, sentence)
            assert "Traceback" not in response.text
        page = dashboard.get("/0/view/jobs/queue_one/queued/0/asc/1")
        assert page.status_code == 400 and "page size must be a whole number" in page.text
        assert 'data-nav="queues"' in page.text  # a normal page, with the navigation
        bulk = dashboard.post("/jobs/bulk", json={"action": "explode", "ids": ["x"]})
        assert bulk.status_code == 400 and "requeue, delete or stop" in bulk.json()["error"]


# -- classes 6 and 7: one bad record is one unreadable row; a bomb is never inflated -------------------


def forge_hash(conn, job_id: str, queue: str = "queue_one", **fields) -> None:
    """A job hash written with raw commands, as an attacker with broker access would."""
    good = {
        "status": "failed",
        "origin": queue,
        "description": "sleep(seconds=0)",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "data": zlib.compress(json.dumps(["task_def.sleep.sleep", None, [], {"seconds": 0}]).encode()),
    }
    conn.hset(f"rq:job:{job_id}", mapping={**good, **fields})


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status_file:
        return next(int(line.split()[1]) for line in status_file if line.startswith("VmHWM:"))


def test_unreadable_records_are_single_rows_and_every_other_row_renders(env, conn):
    queue = make_queue("queue_one", conn)
    good_failed = queue.enqueue(SLEEP, seconds=0)
    make_failed(conn, good_failed, "Traceback (most recent call last):\nRuntimeError: boom")
    good_queued = queue.enqueue(SLEEP, seconds=0)
    missing, wrong_type, corrupt, bad_date, pickled = (str(uuid.uuid4()) for _ in range(5))
    failed_key = queue.failed_job_registry.key
    later = time.time() + 3600
    conn.zadd(failed_key, {missing: later})  # a registry entry whose job hash is gone
    conn.set(f"rq:job:{wrong_type}", "not a hash")  # a job key that is not a hash at all
    conn.rpush(queue.key, wrong_type)
    forge_hash(conn, corrupt, data=b"this is not zlib")
    forge_hash(conn, bad_date, created_at="yesterday-ish")
    forge_hash(conn, pickled, data=zlib.compress(pickle.dumps(("task_def.sleep.sleep", None, (), {}))))
    conn.zadd(failed_key, {corrupt: later, bad_date: later, pickled: later})
    # A finished job whose stored result is not JSON (pickled by another producer).
    done = queue.enqueue(SLEEP, seconds=0)
    pickled_result = base64.b64encode(pickle.dumps({"x": 1}))
    conn.xadd(f"rq:results:{done.id}", {"type": 1, "return_value": pickled_result, "worker_name": ""})
    conn.hset(done.key, "status", "finished")
    conn.zadd(queue.finished_job_registry.key, {done.id: later})
    # A worker record with garbage in it, beside nothing else.
    conn.sadd("rq:workers", "rq:worker:evil")
    conn.hset("rq:worker:evil", mapping={"birth": "not a date", "pid": "nan", "queues": "queue_one"})
    # A batch whose jobs are gone.
    conn.hset("workbench:batch:0123456789ab", mapping={"id": "0123456789ab", "task": "sleep", "queue": "queue_one"})
    conn.rpush("workbench:batch:0123456789ab:jobs", missing)
    conn.zadd("workbench:batches", {"0123456789ab": time.time()})

    forged = [missing, wrong_type, corrupt, bad_date, pickled]
    with dashboard_server(env) as dashboard:
        bodies = everything(dashboard, good_failed.id, good_queued.id, done.id, wrong_type, corrupt, bad_date, pickled)
        failed_rows = dashboard.get("/0/data/jobs/queue_one/failed/50/asc/1.json").json()["jobs"]
        rows = {row["id"]: row for row in failed_rows}
        assert rows[good_failed.id]["error"] == "RuntimeError: boom" and rows[good_failed.id]["unreadable"] is None
        assert rows[missing]["status"] == "missing" and "gone" in rows[missing]["unreadable"]
        for job_id in (corrupt, bad_date, pickled):
            assert rows[job_id]["status"] == "unreadable" and rows[job_id]["unreadable"], job_id
        queued = {row["id"]: row for row in dashboard.get("/0/data/jobs/queue_one/queued/50/asc/1.json").json()["jobs"]}
        assert queued[good_queued.id]["status"] == "queued" and queued[good_queued.id]["task"] == "sleep"
        assert "not a job hash" in queued[wrong_type]["unreadable"]
        assert dashboard.get(f"/0/data/job/{pickled}.json").json()["status"] == "unreadable"
        assert dashboard.get(f"/0/data/job/{done.id}.json").json()["result"] == "(stored data is not JSON; not shown)"
        workers = dashboard.get("/0/data/workers.json").json()["workers"]
        assert [(w["name"], w["state"]) for w in workers] == [("evil", "unreadable")]
        [batch] = dashboard.get("/0/data/batches.json").json()["batches"]
        assert batch["counts"] == {"missing": 1}
        # Each forged row can be deleted from the page it shows on.
        for job_id in forged:
            assert dashboard.post(f"/job/{job_id}/delete").json()["status"] == "OK", job_id
        assert not conn.exists(*(f"rq:job:{job_id}" for job_id in forged))
    assert conn.zcard(failed_key) == 1  # the good failed job; the stray entries went with their rows
    assert "Internal Server Error" not in "".join(bodies.values())


def test_a_compressed_bomb_is_shown_as_too_large_without_being_inflated(env, conn):
    queue = make_queue("queue_one", conn)
    bomb = zlib.compress(b"[" + b" " * (512 * 1024 * 1024) + b"]", 9)  # ~500 KiB that inflates to 512 MiB
    assert len(bomb) < 1024 * 1024
    big = str(uuid.uuid4())
    forge_hash(conn, big, data=bomb)
    conn.zadd(queue.failed_job_registry.key, {big: time.time() + 3600})
    good = queue.enqueue(SLEEP, seconds=0)
    make_failed(conn, good, "RuntimeError: fine")
    error_bomb = queue.enqueue(SLEEP, seconds=0)
    make_failed(conn, error_bomb, "x")
    conn.delete(f"rq:results:{error_bomb.id}")
    conn.xadd(f"rq:results:{error_bomb.id}", {"type": 2, "exc_string": base64.b64encode(bomb), "worker_name": ""})
    with dashboard_server(env) as dashboard:
        before = peak_rss_kib(dashboard.process.pid)
        rows = {r["id"]: r for r in dashboard.get("/0/data/jobs/queue_one/failed/50/asc/1.json").json()["jobs"]}
        assert rows[big]["status"] == "too large" and "16 MiB" in rows[big]["unreadable"]
        assert rows[good.id]["error"] == "RuntimeError: fine"
        assert rows[error_bomb.id]["error"] == "(error text too large to show)"
        info = dashboard.get(f"/0/data/job/{big}.json").json()
        assert info["status"] == "too large"
        assert dashboard.get(f"/0/data/job/{error_bomb.id}.json").json()["status"] == "too large"
        assert dashboard.get(f"/0/view/job/{big}").status_code == 200
        assert dashboard.get("/0/data/search.json?q=fine").status_code == 200
        assert dashboard.post(f"/job/{error_bomb.id}/requeue").status_code == 409
        for job_id in (big, error_bomb.id):
            assert dashboard.post(f"/job/{job_id}/delete").json()["status"] == "OK"
        assert not conn.exists(f"rq:job:{big}", error_bomb.key)
        grown_mib = (peak_rss_kib(dashboard.process.pid) - before) / 1024
    assert grown_mib < 128, f"the dashboard grew by {grown_mib:.0f} MiB: it inflated the bomb"


# -- class 7: --bind ::1 answers -------------------------------------------------------------------


def ipv6_loopback() -> bool:
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_dashboard_bound_to_ipv6_loopback_answers_and_still_refuses_foreign_hosts(env, conn):
    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    with dashboard_server(env, "--bind", "::1", host="::1") as dashboard:
        assert dashboard.startswith("http://[::1]:")
        assert dashboard.get("/").status_code == 200
        queues = dashboard.get("/0/data/queues.json").json()["queues"]
        assert [q["name"] for q in queues] == ["queue_one"]
        assert dashboard.post("/queue/queue_one/queued/empty").json()["status"] == "OK"
        assert dashboard.get("/", headers={"Host": "evil.example"}).status_code == 400
        assert dashboard.get("/", headers={"Host": "[::2]:80"}).status_code == 400


# -- class 8: deleting a running job stops it first, and it never comes back ------------------------


def nowhere(conn, job_id: str) -> bool:
    """The job is in no registry and has no record."""
    registries = [f"rq:{kind}:queue_one" for kind in ("finished", "failed", "canceled", "deferred", "scheduled")]
    in_started = any(m.decode().startswith(job_id) for m in conn.zrange("rq:wip:queue_one", 0, -1))
    return (
        not conn.exists(f"rq:job:{job_id}")
        and not in_started
        and all(conn.zscore(key, job_id) is None for key in registries)
        and job_id.encode() not in conn.lrange("rq:queue:queue_one", 0, -1)
    )


def test_deleting_running_jobs_stops_them_first_and_they_never_come_back(env, conn, consumer):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    one, two = enqueue_sleep(conn, 60).id, enqueue_sleep(conn, 60).id
    wait_started(conn, one)
    wait_started(conn, two)
    with dashboard_server(env) as dashboard:
        deleted = dashboard.post(f"/job/{one}/delete")
        assert deleted.status_code == 200 and deleted.json()["status"] == "OK"
        assert nowhere(conn, one)
        bulk = dashboard.post("/jobs/bulk", json={"action": "delete", "ids": [two]})
        assert bulk.json() == {"status": "OK", "done": [two], "refused": []}
        assert nowhere(conn, two)
        # Both workers carry on, and neither writes a deleted job back when it ends.
        after = [enqueue_sleep(conn, 0.2).id for _ in range(4)]
        wait_for(lambda: all(status(conn, job_id) == "finished" for job_id in after), "the next jobs to finish")
        workers = dashboard.get("/0/data/workers.json").json()["workers"]
        assert {w["state"] for w in workers} == {"idle"} and all(w["current_job_id"] is None for w in workers)
        assert sum(w["failed_job_count"] for w in workers) == 2  # each ended "stopped" before it was deleted
        assert nowhere(conn, one) and nowhere(conn, two)


def test_emptying_the_started_list_stops_each_job_first(env, conn, consumer):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    ids = [enqueue_sleep(conn, 60).id for _ in range(2)]
    for job_id in ids:
        wait_started(conn, job_id)
    with dashboard_server(env) as dashboard:
        emptied = dashboard.post("/queue/queue_one/started/empty")
        assert emptied.status_code == 200 and emptied.json() == {"status": "OK", "deleted": 2}
    assert all(nowhere(conn, job_id) for job_id in ids)
    later = enqueue_sleep(conn, 0.2).id
    wait_for(lambda: status(conn, later) == "finished", "a worker to take the next job")
    assert all(nowhere(conn, job_id) for job_id in ids)


def test_a_running_job_that_cannot_be_stopped_is_not_deleted_and_the_answer_says_why(env, conn):
    # A worker that is registered (so it may still be running the job) but does not listen for commands.
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    conn.sadd("rq:workers", "rq:worker:deaf")
    born = "2026-01-01T00:00:00.000000Z"
    conn.hset("rq:worker:deaf", mapping={"birth": born, "queues": "queue_one", "state": "busy"})
    conn.lrem("rq:queue:queue_one", 0, job.id)
    conn.hset(job.key, mapping={"status": "started", "worker_name": "deaf"})
    conn.zadd("rq:wip:queue_one", {f"{job.id}:exec1": time.time() + 600})
    with dashboard_server(env) as dashboard:
        for response in (
            dashboard.post(f"/job/{job.id}/delete"),
            dashboard.post("/queue/queue_one/started/empty"),
        ):
            assert response.status_code == 409
            sentence = response.json()["error"]
            assert "not listening for commands" in sentence and "not deleted" in sentence, sentence
        bulk = dashboard.post("/jobs/bulk", json={"action": "delete", "ids": [job.id]}).json()
        assert bulk["status"] == "ERROR" and bulk["refused"][0]["id"] == job.id
    assert fetch_job(job.id, conn).get_status() == "started"
