"""Issue 15 over HTTP, as an operator uses the dashboard: stop, bulk actions, failed across queues, worker
stop, search, what the lists show, unknown ids, the Workers page's columns, batches, trends and /metrics,
against real workers started by consumer_main.py and jobs enqueued by producer_main.py."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq.utils import now

from workbench import batches
from workbench.jobs import fetch_job, make_queue

from .dashboard_support import SLEEP, dashboard_server, make_failed
from .supervision_support import FAST, enqueue_sleep, failure, status, wait_started
from .support import wait_for


def wait_status(conn, job_id: str, wanted: str, timeout: float = 30) -> None:
    wait_for(lambda: status(conn, job_id) == wanted, f"job {job_id} to be {wanted}", timeout)


def failed_job(conn, queue: str, task_path: str, error: str, **params):
    job = make_queue(queue, conn).enqueue(task_path, **params)
    job.ended_at = now()  # as a worker records it
    job.save()
    make_failed(conn, job, f'Traceback (most recent call last):\n  File "x.py", line 1\n{error}')
    return job


# -- control ------------------------------------------------------------------------------------


def test_stop_ends_a_running_job_stopped_and_its_worker_carries_on(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    job = enqueue_sleep(conn, 60)
    wait_started(conn, job.id)
    with dashboard_server(env) as dashboard:
        [row] = dashboard.get("/0/data/jobs/queue_one/started/8/asc/1.json").json()["jobs"]
        assert row["id"] == job.id and row["abandoned"] is None
        stopped = dashboard.post(f"/job/{job.id}/stop")
        assert stopped.status_code == 200 and stopped.json()["job_status"] == "stopped"
        assert status(conn, job.id) == "stopped"
        again = dashboard.post(f"/job/{job.id}/stop")
        assert again.status_code == 409
        assert again.json()["error"] == f"job {job.id} is stopped, not running; only a running job can be stopped."
        assert dashboard.post("/job/no-such-job/stop").status_code == 404
        assert dashboard.get(f"/job/{job.id}/stop").status_code == 405  # state changes are POST only
    nxt = enqueue_sleep(conn, 0)
    wait_status(conn, nxt.id, "finished")


def test_bulk_actions_requeue_delete_and_stop_and_name_what_they_could_not_do(env, conn, consumer):
    queue = make_queue("queue_one", conn)
    failed = [failed_job(conn, "queue_one", SLEEP, "RuntimeError: boom", seconds=0) for _ in range(3)]
    waiting = queue.enqueue(SLEEP, seconds=0)
    with dashboard_server(env) as dashboard:
        ids = [job.id for job in failed]
        requeued = dashboard.post("/jobs/bulk", json={"action": "requeue", "ids": [*ids[:2], waiting.id]}).json()
        assert requeued["status"] == "ERROR" and requeued["done"] == ids[:2]
        assert [r["id"] for r in requeued["refused"]] == [waiting.id]
        assert "cannot be requeued" in requeued["refused"][0]["error"]
        assert [status(conn, i) for i in ids] == ["queued", "queued", "failed"]
        deleted = dashboard.post("/jobs/bulk", json={"action": "delete", "ids": [ids[2], waiting.id]}).json()
        assert deleted == {"status": "OK", "done": [ids[2], waiting.id], "refused": []}
        assert not conn.exists(failed[2].key, waiting.key)
        consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
        running = [enqueue_sleep(conn, 60).id for _ in range(2)]
        for job_id in running:
            wait_started(conn, job_id)
        stopped = dashboard.post("/jobs/bulk", json={"action": "stop", "ids": running}).json()
        assert stopped["status"] == "OK" and sorted(stopped["done"]) == sorted(running)
        assert [status(conn, i) for i in running] == ["stopped", "stopped"]
        too_many = dashboard.post("/jobs/bulk", json={"action": "stop", "ids": ["x"] * 1001})
        assert too_many.status_code == 400 and "at most 1000" in too_many.json()["error"]
        assert dashboard.post("/jobs/bulk", json={"action": "stop"}).status_code == 400
        assert (
            dashboard.post(
                "/jobs/bulk", json={"action": "stop", "ids": ["x"]}, headers={"Origin": "http://evil"}
            ).status_code
            == 403
        )


def test_failed_jobs_of_every_queue_newest_first_filtered_by_queue_and_task(env, conn):
    made = []
    for queue, task, error in [
        ("alpha", SLEEP, "RuntimeError: one"),
        ("beta", "task_def.maths.fibonacci", "ValueError: two"),
        ("alpha", "task_def.maths.fibonacci", "KeyError: three"),
        ("beta", SLEEP, "OSError: four"),
    ]:
        made.append(failed_job(conn, queue, task, error, **({"seconds": 0} if task == SLEEP else {"n": 5})))
        time.sleep(0.01)  # distinct failure times: the list is newest first
    newest_first = [job.id for job in reversed(made)]
    with dashboard_server(env) as dashboard:
        page = dashboard.get("/0/data/failed.json").json()
        assert [row["id"] for row in page["jobs"]] == newest_first and page["total"] == 4
        assert [row["error"] for row in page["jobs"]] == [
            "OSError: four",
            "KeyError: three",
            "ValueError: two",
            "RuntimeError: one",
        ]
        alpha = dashboard.get("/0/data/failed.json?queue=alpha").json()
        assert [row["id"] for row in alpha["jobs"]] == [made[2].id, made[0].id] and alpha["total"] == 2
        fib = dashboard.get("/0/data/failed.json?task=fibonacci").json()
        assert [row["id"] for row in fib["jobs"]] == [made[2].id, made[1].id]
        assert {row["task"] for row in fib["jobs"]} == {"fibonacci"}
        both = dashboard.get("/0/data/failed.json?task=sleep&queue=beta").json()
        assert [row["id"] for row in both["jobs"]] == [made[3].id]
        first, second = (dashboard.get(f"/0/data/failed.json?per_page=3&page={n}").json() for n in (1, 2))
        assert first["more"] and not second["more"]
        assert [r["id"] for r in first["jobs"] + second["jobs"]] == newest_first
        view = dashboard.get("/0/view/failed")
        assert (
            view.status_code == 200
            and '<option value="alpha">' in view.text
            and '<option value="fibonacci">' in view.text
        )
        # "Requeue all shown" sends the shown ids to the bulk action.
        shown = [row["id"] for row in alpha["jobs"]]
        assert dashboard.post("/jobs/bulk", json={"action": "requeue", "ids": shown}).json()["status"] == "OK"
        assert dashboard.get("/0/data/failed.json").json()["total"] == 2


def test_workers_stop_warm_and_by_force_as_kill_workers_does_and_are_not_replaced(env, conn, consumer):
    process = consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    job = enqueue_sleep(conn, 60)
    wait_started(conn, job.id)
    with dashboard_server(env) as dashboard:
        rows = dashboard.get("/0/data/workers.json").json()["workers"]
        busy = next(w["name"] for w in rows if w["current_job_id"] == job.id)
        idle = next(w["name"] for w in rows if w["name"] != busy)
        warm = dashboard.post(f"/worker/{idle}/stop")
        assert warm.status_code == 200 and warm.json()["message"] == f"worker {idle} stopped."
        forced = dashboard.post(f"/worker/{busy}/force-stop")
        assert forced.status_code == 200, forced.text
        assert dashboard.get("/0/data/workers.json").json()["workers"] == []
        assert dashboard.post(f"/worker/{busy}/stop").status_code == 404
    assert status(conn, job.id) == "failed" and "stopped by user" in failure(conn, job.id)
    assert process.wait(30) == 0  # every worker was stopped on purpose: none replaced, the consumer is done


def test_a_warm_stop_of_a_busy_worker_lets_its_job_finish(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    with dashboard_server(env) as dashboard:  # up before the job starts: its run is the stop's whole window
        job = enqueue_sleep(conn, 4)
        wait_started(conn, job.id)
        [row] = dashboard.get("/0/data/workers.json").json()["workers"]
        answer = dashboard.post(f"/worker/{row['name']}/stop")
        assert (
            answer.status_code == 202
            and answer.json()["message"] == f"worker {row['name']} stops after its current job {job.id}."
        )
        wait_status(conn, job.id, "finished")
        wait_for(lambda: dashboard.get("/0/data/workers.json").json()["workers"] == [], "the worker to leave")


# -- finding things -------------------------------------------------------------------------------


def test_search_by_id_prefix_task_parameters_and_error_links_to_the_job(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    queue = make_queue("queue_one", conn)
    # Refused by the worker: the error says why; the description does not.
    broken = queue.enqueue(SLEEP, seconds=-5)
    wait_status(conn, broken.id, "failed")
    scrape = make_queue("held", conn).enqueue("task_def.scrape.scrape", url="http://example.org/needle-page")
    fib = make_queue("other", conn).enqueue("task_def.maths.fibonacci", n=17)
    with dashboard_server(env) as dashboard:

        def found(query: str) -> list[str]:
            answer = dashboard.get("/0/data/search.json", params={"q": query}).json()
            assert answer["complete"] and answer["total"] == 3
            return [row["id"] for row in answer["jobs"]]

        assert found(fib.id[:6]) == [fib.id]
        assert found(fib.id) == [fib.id]
        assert found(broken.id[:5]) in ([], [broken.id])  # five characters are text, not an id
        assert found("fibonacci") == [fib.id]
        assert found("NEEDLE-page") == [scrape.id]
        assert found("refused parameters") == [broken.id]
        assert found("nothing-like-this") == []
        page = dashboard.get("/0/view/search", params={"q": "fibonacci"})
        assert page.status_code == 200 and 'data-query="fibonacci"' in page.text
        row = dashboard.get("/0/data/search.json", params={"q": "fibonacci"}).json()["jobs"][0]
        assert row["origin"] == "other" and row["task"] == "fibonacci" and row["params"] == "n=17"
        assert dashboard.get(f"/0/view/job/{row['id']}").status_code == 200


def test_lists_show_task_parameters_wait_duration_and_the_last_line_of_the_error(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    ok = enqueue_sleep(conn, 0.3)
    bad = make_queue("queue_one", conn).enqueue("task_def.scrape.scrape", url="http://10.0.0.1/" + "x" * 200)
    wait_status(conn, ok.id, "finished")
    wait_status(conn, bad.id, "failed")
    with dashboard_server(env) as dashboard:
        [done] = dashboard.get("/0/data/jobs/queue_one/finished/8/asc/1.json").json()["jobs"]
        assert done["task"] == "sleep" and done["params"] == "seconds=0.3"
        assert 0.3 <= done["duration_s"] < 30 and done["wait_s"] >= 0 and done["error"] is None
        [row] = dashboard.get("/0/data/jobs/queue_one/failed/8/asc/1.json").json()["jobs"]
        assert row["task"] == "scrape" and len(row["params"]) <= 80 and row["params"].endswith("…")
        assert row["error"].startswith("refused http://10.0.0.1/") and "\n" not in row["error"]
        assert row["exc_info"].startswith("Traceback") and row["exc_info"].rstrip().endswith(
            row["error"].split(": ", 1)[-1]
        )
        info = dashboard.get(f"/0/data/job/{bad.id}.json").json()
        assert info["exc_info"].startswith("Traceback") and json.loads(info["params_json"])["url"].endswith("x" * 200)


def test_unknown_job_and_batch_ids_are_normal_pages_with_a_sentence(env, conn):
    with dashboard_server(env) as dashboard:
        for path, sentence in [
            ("/0/view/job/no-such-job", "No job <strong>no-such-job</strong> exists in the broker"),
            ("/0/view/batch/abcdefabcdef", "No batch <strong>abcdefabcdef</strong> exists in the broker"),
        ]:
            page = dashboard.get(path)
            assert page.status_code == 404 and sentence in page.text
            assert 'data-nav="queues"' in page.text and 'name="q"' in page.text  # navigation and search
        assert dashboard.get("/0/data/job/no-such-job.json").json()["error"].startswith("no job no-such-job exists")


# -- trends, workers, batches, metrics ------------------------------------------------------------


def test_workers_page_has_upstream_fields_host_load_uptime_and_the_running_job(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    job = enqueue_sleep(conn, 8)
    wait_started(conn, job.id)
    with dashboard_server(env) as dashboard:

        def measured() -> dict | None:
            [row] = dashboard.get("/0/data/workers.json").json()["workers"]
            return row if row["cpu_percent"] is not None and row["job_running_s"] else None

        row = wait_for(measured, "the worker's beat to carry its load")
    for field in ("pid", "birth_date", "last_heartbeat", "total_working_time", "version", "python_version"):
        assert row[field] not in (None, ""), field
    assert row["hostname"] and row["uptime_s"] > 0 and row["rss_bytes"] > 10 * 1024 * 1024
    assert 0 <= row["cpu_percent"] <= 200
    assert row["current_job_id"] == job.id and row["current_job"]["job_id"] == job.id
    assert row["description"].startswith(SLEEP) and row["job_running_s"] > 0 and row["state"] == "busy"


def test_trends_come_from_the_workers_finishing_transactions(env, conn, consumer):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    oks = [enqueue_sleep(conn, 0.2).id for _ in range(5)]
    bads = [
        make_queue("queue_one", conn).enqueue("task_def.scrape.scrape", url="http://10.0.0.2/").id for _ in range(2)
    ]
    for job_id in oks:
        wait_status(conn, job_id, "finished")
    for job_id in bads:
        wait_status(conn, job_id, "failed")
    with dashboard_server(env) as dashboard:
        trends = dashboard.get("/0/data/trends.json").json()
        [queue] = trends["queues"]
        assert queue["name"] == "queue_one" and len(queue["minutes"]) == 60
        assert sum(m["finished"] for m in queue["minutes"]) == 5
        assert sum(m["failed"] for m in queue["minutes"]) == 2
        assert queue["minutes"][-1]["queued"] == 0  # sampled this minute
        tasks = {t["task"]: t for t in trends["tasks"]}
        assert tasks["sleep"]["hour"]["count"] == 5 and tasks["scrape"]["hour"]["count"] == 2
        assert (
            0.2 <= tasks["sleep"]["hour"]["p50_s"] <= tasks["sleep"]["hour"]["p95_s"] <= tasks["sleep"]["hour"]["max_s"]
        )
        assert tasks["sleep"]["day"]["count"] == 5
        row = next(q for q in dashboard.get("/0/data/queues.json").json()["queues"] if q["name"] == "queue_one")
        assert (row["finished_last_hour"], row["failed_last_hour"]) == (5, 2)
    keys = [k.decode() for k in conn.keys("workbench:stats:*")]
    assert keys and all(conn.ttl(k) > 0 for k in keys if ":total:" not in k and not k.endswith(":tasks"))


def test_a_batch_and_a_split_are_shown_as_one_thing_with_progress_and_speed_up(env, conn, consumer, cli):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    plain = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0.2", "--count", "4", "--wait")
    assert plain.returncode == 0, plain.stderr
    split = cli("producer_main.py", "--task", "count_primes", "--param", "limit=2000000", "--split", "3", "--wait")
    assert split.returncode == 0, split.stderr
    [newest, older] = batches.recent(conn, 2)
    with dashboard_server(env) as dashboard:
        listed = dashboard.get("/0/data/batches.json").json()["batches"]
        assert [b["id"] for b in listed] == [newest.id, older.id]
        one = dashboard.get(f"/0/data/batch/{older.id}.json").json()
        assert (one["task"], one["total"], one["done"], one["progress"], one["complete"]) == ("sleep", 4, 4, 1.0, True)
        assert one["counts"] == {"finished": 4} and one["failures"] == []
        assert one["wall_s"] >= 0.2 and one["busy_s"] >= 0.8 and one["speedup"] > 0
        assert {row["batch"] for row in one["jobs"]} == {older.id}
        parts = dashboard.get(f"/0/data/batch/{newest.id}.json").json()
        assert parts["split"] == 3 and parts["total"] == 4 and parts["complete"]
        assert parts["combined"]["count"] == 148933 and parts["combined"]["chunks"] == 3
        assert parts["combined"]["speedup"] > 0
        assert dashboard.get(f"/0/view/batch/{newest.id}").status_code == 200
        second = dashboard.get(f"/0/data/batch/{older.id}.json?per_page=3&page=2").json()
        assert len(second["jobs"]) == 1 and second["pages"] == 2


def test_metrics_parse_with_prometheus_clients_own_parser_behind_the_same_auth(env, conn, consumer):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    ok = enqueue_sleep(conn, 0.1)
    bad = make_queue("queue_one", conn).enqueue("task_def.scrape.scrape", url="http://10.0.0.3/")
    wait_status(conn, ok.id, "finished")
    wait_status(conn, bad.id, "failed")
    make_queue("waiting", conn).enqueue(SLEEP, seconds=0)
    with dashboard_server(env, DASHBOARD_USERNAME="ada", DASHBOARD_PASSWORD="s3cret") as dashboard:
        assert dashboard.get("/metrics").status_code == 401
        response = dashboard.get("/metrics", auth=("ada", "s3cret"))
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}

    def value(family: str, sample: str, **labels) -> float:
        found = [s.value for s in families[family].samples if s.name == sample and s.labels == labels]
        assert len(found) == 1, (family, sample, labels, families[family].samples)
        return found[0]

    assert value("workbench_jobs", "workbench_jobs", queue="waiting", registry="queued") == 1
    assert value("workbench_jobs", "workbench_jobs", queue="queue_one", registry="finished") == 1
    assert value("workbench_jobs", "workbench_jobs", queue="queue_one", registry="failed") == 1
    assert sum(s.value for s in families["workbench_workers"].samples) == 1
    assert families["workbench_jobs_finished"].type == "counter"
    assert value("workbench_jobs_finished", "workbench_jobs_finished_total", queue="queue_one", task="sleep") == 1
    assert value("workbench_jobs_failed", "workbench_jobs_failed_total", queue="queue_one", task="scrape") == 1
    histogram = families["workbench_job_duration_seconds"]
    assert histogram.type == "histogram"
    assert value(histogram.name, "workbench_job_duration_seconds_count", task="sleep") == 1
    assert value(histogram.name, "workbench_job_duration_seconds_bucket", task="sleep", le="+Inf") == 1
    assert value(histogram.name, "workbench_job_duration_seconds_bucket", task="sleep", le="0.01") == 0
    assert value(histogram.name, "workbench_job_duration_seconds_bucket", task="sleep", le="1") == 1
    assert value(histogram.name, "workbench_job_duration_seconds_sum", task="sleep") >= 0.1


@pytest.mark.parametrize("registry", ["finished", "failed"])
def test_emptying_an_ended_list_deletes_every_job_record(env, conn, registry):
    queue = make_queue("queue_one", conn)
    jobs = [queue.enqueue(SLEEP, seconds=0) for _ in range(3)]
    for job in jobs:
        if registry == "failed":
            make_failed(conn, job, "RuntimeError: x")
        else:
            queue.remove(job.id)
            job.set_status("finished")
            queue.finished_job_registry.add(job, 600)
    with dashboard_server(env) as dashboard:
        assert dashboard.post(f"/queue/queue_one/{registry}/empty").json() == {"status": "OK", "deleted": 3}
    assert not conn.exists(*(job.key for job in jobs))
    assert conn.zcard(f"rq:{registry}:queue_one") == 0
    with pytest.raises(Exception):  # noqa: B017 - any: the job is gone
        fetch_job(jobs[0].id, conn)
