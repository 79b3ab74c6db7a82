"""Issue 12 class 7, round three, against one real dashboard over HTTP: forged checkpoints, forged members
of RQ's queue set and keys of the wrong type; every page renders the other rows, the bad one is unreadable."""

from __future__ import annotations

import json
import os
import time

import pytest
import redis

from workbench import batches, stats
from workbench.dashboard import app
from workbench.jobs import make_queue

from .dashboard_support import SLEEP, dashboard_server
from .support import free_port
from .test_dashboard_hostile import DATA, PAGES, forge_hash


@pytest.fixture(scope="module")
def dashboard(broker_url, tmp_path_factory):
    """One dashboard for the module (each test forges its own records; the dashboard reads them live)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "SCRAPE_"))}
    env = {
        **base,
        "REDIS_URL": broker_url,
        "WORKBENCH_DATA_DIR": str(tmp_path_factory.mktemp("dashboard-data")),
        "WORKBENCH_BROKER_PORT": str(free_port()),
    }
    with dashboard_server(env) as server:
        yield server


def every_page(dashboard, *job_ids: str) -> dict[str, str]:
    paths = [*PAGES, *DATA, *(f"/0/view/job/{i}" for i in job_ids), *(f"/0/data/job/{i}.json" for i in job_ids)]
    bodies = {}
    for path in paths:
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        bodies[path] = response.text
    return bodies


def test_a_forged_checkpoint_shows_as_none_on_the_job_page(dashboard, conn):
    good = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    good_checkpoint = json.dumps({"state": {"i": 3}, "fraction": 0.5, "saved_at": 1767225600.0, "writes": 2})
    conn.hset(good.key, "workbench_checkpoint", good_checkpoint)
    forged = {
        "far-future": json.dumps({"state": 1, "saved_at": 1e300, "fraction": 0.25}),
        "infinite": '{"state":1,"saved_at":Infinity,"fraction":NaN}',
        "nested": '{"state":' + "[" * 60000 + "]" * 60000 + "}",  # past the JSON parser's recursion limit
    }
    for job_id, document in forged.items():
        forge_hash(conn, job_id, workbench_checkpoint=document)
    every_page(dashboard, good.id, *forged)
    shown = dashboard.get(f"/0/data/job/{good.id}.json").json()["checkpoint"]
    assert shown == {
        "fraction": 0.5,
        "saved_at": "2026-01-01T00:00:00+00:00",
        "bytes": len(good_checkpoint),
        "writes": 2,
    }
    for job_id in ("far-future", "infinite"):
        checkpoint = dashboard.get(f"/0/data/job/{job_id}.json").json()["checkpoint"]
        assert checkpoint["saved_at"] is None, job_id
    assert dashboard.get("/0/data/job/nested.json").json()["checkpoint"] is None


def test_forged_members_of_the_queue_set_are_skipped_by_every_page(dashboard, conn):
    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    conn.sadd("rq:queues", "not-a-queue-key", b"rq:queue:\xff\xfe", "rq:queue:")
    bodies = every_page(dashboard)
    queues = dashboard.get("/0/data/queues.json").json()["queues"]
    assert [(q["name"], q["count"]) for q in queues] == [("queue_one", 1)]
    assert 'workbench_jobs{queue="queue_one",registry="queued"} 1.0' in bodies["/metrics"]


def test_a_list_key_of_another_type_is_one_unreadable_count(dashboard, conn):
    queue = make_queue("queue_one", conn)
    queue.enqueue(SLEEP, seconds=0)
    conn.hset(queue.deferred_job_registry.key, "forged", "hash")
    conn.set(queue.scheduled_job_registry.key, "a string")
    conn.rpush(queue.started_job_registry.key, "a list")
    for path in ("/", "/0/data/queues.json", "/0/data/search.json?q=sleep", "/0/data/failed.json", "/metrics"):
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    [row] = dashboard.get("/0/data/queues.json").json()["queues"]
    assert row["count"] == 1 and row["failed_job_registry_count"] == 0 and row["abandoned_job_count"] == 0
    for name in ("deferred", "scheduled", "started"):
        assert row[f"{name}_job_registry_count"] == "unreadable", name
    metrics = dashboard.get("/metrics").text
    assert 'workbench_jobs{queue="queue_one",registry="queued"} 1.0' in metrics
    assert 'registry="deferred"' not in metrics
    assert [hit["id"] for hit in dashboard.get("/0/data/search.json?q=sleep").json()["jobs"]] != []


def test_statistics_keys_of_another_type_cost_only_their_own_figures(dashboard, conn):
    queue = make_queue("queue_one", conn)
    queue.enqueue(SLEEP, seconds=0)
    minute = stats.minute_of(time.time())
    conn.sadd(stats.TASKS_KEY, "sleep", "count_primes")
    conn.hset(stats.total_key("count_primes"), mapping={"finished:queue_one": 3, "b5": 3, "sum": 0.5})
    conn.set(stats.minute_hist_key("sleep", minute), "a string")
    conn.hset(stats.max_key("sleep", minute // 60), "a", "hash")
    conn.set(stats.total_key("sleep"), "a string")
    conn.set(stats.queue_key("queue_one", minute), "a string")
    for hour in {minute // 60, (minute + 2) // 60}:
        conn.rpush(stats.depth_key("queue_one", hour), "a list")
    for path in ("/", "/0/data/queues.json", "/0/view/trends", "/0/data/trends.json", "/metrics"):
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    assert 'workbench_jobs_finished_total{queue="queue_one",task="count_primes"} 3.0' in dashboard.get("/metrics").text
    assert stats.sample_depths(conn, time.time() + 120)  # the sampler carries on past the forged depth key


def test_a_refused_read_is_said_as_a_refusal_not_as_a_broker_that_is_away():
    refusal = app._broker_unavailable(redis.ResponseError("NOPERM this user has no permissions\x1b[2J"))
    assert refusal.status_code == 503
    said = refusal.get_data(as_text=True)
    assert said == "The broker refused a read (NOPERM this user has no permissions\\x1b[2J).\n"
    away = app._broker_unavailable(redis.ConnectionError("Connection refused"))
    assert away.get_data(as_text=True) == "The broker is not answering (ConnectionError).\n"


def write_batch(conn, batch_id: str, job_ids: list[str]) -> None:
    with conn.pipeline() as pipe:
        batches.write(pipe, batch_id, task="sleep", queue="queue_one", params={"seconds": 0}, job_ids=job_ids)
        pipe.execute()


def test_batch_keys_of_another_type_are_unreadable_rows_and_the_rest_renders(dashboard, conn):
    job = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    write_batch(conn, "0000000000a0", [job.id])
    write_batch(conn, "0000000000a1", [job.id])
    conn.set(batches.record_key("0000000000a1"), "a string")  # the record: not a hash
    write_batch(conn, "0000000000a2", [job.id])
    conn.delete(batches.jobs_key("0000000000a2"))
    conn.set(batches.jobs_key("0000000000a2"), "a string")  # its job list: not a list
    write_batch(conn, "0000000000a3", [job.id, "forged-job", "\xff"])
    conn.set("rq:job:forged-job", "a string")  # one of its jobs: not a hash
    conn.rpush(batches.jobs_key("0000000000a3"), b"\xff\xfe")  # a job id that is not text
    conn.zadd(batches.BATCHES_KEY, {"\x1b[31mnot-an-id": 1, b"\xff\xfe": 2})
    pages = ["/0/view/batches", "/0/data/batches.json"]
    for number in range(4):
        pages += [f"/0/view/batch/0000000000a{number}", f"/0/data/batch/0000000000a{number}.json"]
    for path in pages:
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    rows = {row["id"]: row for row in dashboard.get("/0/data/batches.json").json()["batches"]}
    assert "unreadable" not in rows["0000000000a0"] and rows["0000000000a0"]["total"] == 1
    assert rows["0000000000a1"]["unreadable"] == "its record (workbench:batch:0000000000a1) is not a hash"
    assert rows["0000000000a2"]["unreadable"] == "its job list (workbench:batch:0000000000a2:jobs) is not a list"
    assert rows["\x1b[31mnot-an-id"]["unreadable"] == rows["\ufffd\ufffd"]["unreadable"]
    assert rows["\ufffd\ufffd"]["unreadable"] == "not a batch id the producer writes"
    detail = dashboard.get("/0/data/batch/0000000000a3.json").json()
    assert detail["unreadable"] == "1 of its job ids are not text (left out)"
    assert [(row["id"], row["status"]) for row in detail["jobs"]] == [
        (job.id, "queued"),
        ("forged-job", "unreadable"),
        ("\xff", "missing"),
    ]
    conn.delete(batches.BATCHES_KEY)
    conn.set(batches.BATCHES_KEY, "a string")  # the index itself: not a sorted set
    [row] = dashboard.get("/0/data/batches.json").json()["batches"]
    assert (row["id"], row["unreadable"]) == ("workbench:batches", "the batch index is not a sorted set")


def test_a_worker_registry_of_another_type_is_one_unreadable_row(dashboard, conn):
    conn.set("rq:workers", "a string")
    for path in ("/0/view/workers", "/0/data/workers.json", "/metrics"):
        response = dashboard.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    [row] = dashboard.get("/0/data/workers.json").json()["workers"]
    assert row["name"] == "rq:workers" and row["state"] == "unreadable"
    assert row["unreadable"] == "RQ's worker registry rq:workers holds another type than a set (forged?)"
    assert 'workbench_workers{host="?",state="unreadable"} 1.0' in dashboard.get("/metrics").text


def test_a_job_list_of_another_type_says_so_on_its_own_page(dashboard, conn):
    queue = make_queue("queue_one", conn)
    queue.enqueue(SLEEP, seconds=0)
    conn.set(queue.started_job_registry.key, "a string")
    conn.hset(queue.finished_job_registry.key, "a", "hash")
    for name in ("started", "finished"):
        for order in ("asc", "dsc"):
            response = dashboard.get(f"/0/data/jobs/queue_one/{name}/8/{order}/1.json")
            assert response.status_code == 200, (name, response.status_code, response.text[:300])
            data = response.json()
            assert (data["total"], data["jobs"]) == ("unreadable", []), data
            assert data["unreadable"] == "its key holds another type than RQ writes"
        assert dashboard.get(f"/0/view/jobs/queue_one/{name}/8/asc/1").status_code == 200
    queued = dashboard.get("/0/data/jobs/queue_one/queued/8/asc/1.json").json()
    assert queued["total"] == 1 and "unreadable" not in queued
