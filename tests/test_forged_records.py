"""Forged broker records never take a console down (issue 12, classes 1, 4 and 7, round two).

Each record is written with raw redis commands, as an attacker with broker access would, and
the real entry points read it: a garbled worker hash, registry members that are not worker
keys, a forged schedule, a forged batch, a forged checkpoint. One bad record is one line that
says so; every other record is still shown, nothing prints a traceback, and the consumer and
its scheduler thread carry on.
"""

from __future__ import annotations

import json
import signal
import time

from workbench.jobs import make_queue
from workbench.schedules import SCHEDULES_KEY

from .supervision_support import Output
from .support import wait_for


def assert_clean(run, code: int = 0) -> None:
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr


def forge_worker(conn, key: str, **fields: str) -> None:
    record = {"birth": "2026-01-01T00:00:00.000000Z", "last_heartbeat": "2026-12-01T00:00:00.000000Z",
              "hostname": "h", "queues": "q1", "state": "idle", "pid": "42"}  # fmt: skip
    conn.hset(key, mapping={**record, **fields})
    conn.sadd("rq:workers", key)


GARBLED_WORKERS = {
    "rq:worker:bad-birth": {"birth": "yesterday"},
    "rq:worker:bad-beat": {"last_heartbeat": "\x1b[2Jsoon"},
    "rq:worker:bad-pid": {"pid": "4x2"},
    "rq:worker:bad-count": {"successful_job_count": "1e9999", "failed_job_count": "many"},
    "rq:worker:bad-time": {"total_working_time": "forever"},
}


def test_garbled_worker_records_are_listed_as_unreadable_and_the_rest_still_shows(cli, conn):
    for key, fields in GARBLED_WORKERS.items():
        forge_worker(conn, key, **fields)
    forge_worker(conn, "rq:worker:good", hostname="fine-host")
    conn.set("rq:worker:not-a-hash", "x")
    conn.sadd("rq:workers", "rq:worker:not-a-hash", "no-prefix\x1b[31m")

    table = cli("kill_thread/list_workers.py")
    assert_clean(table)
    lines = table.stdout.splitlines()
    assert any(line.startswith("good ") and "fine-host" in line for line in lines), table.stdout
    for name in [key.split(":", 2)[2] for key in GARBLED_WORKERS] + ["not-a-hash"]:
        assert any(line.startswith(f"{name} ") and "unreadable" in line for line in lines), (name, table.stdout)
        assert f"warning: worker {name}: its record cannot be read" in table.stderr
    assert "\x1b" not in table.stdout + table.stderr and "no-prefix\\x1b[31m" in table.stdout

    listed = cli("kill_thread/list_workers.py", "--json")
    assert_clean(listed)
    records = {record["name"]: record for record in map(json.loads, listed.stdout.splitlines())}
    assert records["good"]["unreadable"] is None and records["good"]["hostname"] == "fine-host"
    assert records["bad-birth"]["state"] == "unreadable" and "yesterday" in records["bad-birth"]["unreadable"]
    assert records["no-prefix\x1b[31m"]["state"] == "not a worker key"

    # Stopping them: the unreadable ones are named as not stopping, never a traceback; the stray member is no worker.
    stopped = cli("kill_thread/kill_workers.py", "--all", "--grace", "0")
    assert_clean(stopped, 1)
    assert "Stopping 7 worker(s)" in stopped.stderr
    assert "bad-birth (not listening for commands" in stopped.stderr
    named = cli("kill_thread/kill_workers.py", "--name", "bad-pid", "--grace", "0")
    assert_clean(named, 1)


def test_the_producer_queue_list_survives_a_garbled_worker(cli, conn):
    forge_worker(conn, "rq:worker:bad-birth", birth="yesterday")
    forge_worker(conn, "rq:worker:good", queues="served")
    from workbench.queues import queue_sizes

    assert ("served", 0, 1) in queue_sizes(conn)


def test_the_consumer_live_view_survives_a_garbled_record_of_its_own_worker(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    output = Output(process)
    [key] = [member.decode() for member in conn.smembers("rq:workers")]
    conn.hset(key, mapping={"birth": "yesterday", "pid": "x"})
    from task_def.primes import count_primes

    job = make_queue("queue_one", conn).enqueue(count_primes, limit=100)
    wait_for(lambda: job.get_status(refresh=True) == "finished", "a job after the record was garbled")
    time.sleep(1.5)  # the live view redraws every second: at least one redraw reads the garbled record
    assert process.poll() is None, output.text
    process.send_signal(signal.SIGINT)
    text = output.finish()
    assert process.returncode == 0, text
    assert "Traceback" not in text
    assert "unreadable" in text


#: Schedule records no producer writes: each is listed as unreadable and never fired.
FORGED_SCHEDULES = {
    "text-period": {"every_s": "abc"},
    "bad-cron": {"every_s": None, "cron": "bogus cron"},
    "far-future": {"last_fired": 1e30},
    "not-a-time": {"created": "x"},
    "huge-count": {"count": 10**9},
    "negative": {"every_s": -5},
    "both": {"cron": "* * * * *"},
    "bad-back-off": {"retries": 1, "retry_intervals": 5},
    "elsewhere": {"name": "other"},
    "bad-queue": {"queue": "q\x1b[2J"},
    "deep": {"params": json.loads("[" * 50 + "]" * 50)},
}


def forge_schedules(conn) -> None:
    base = {"task": "sleep", "params": {"seconds": 0}, "queue": "queue_one", "count": 1, "timeout_s": None,
            "retries": 0, "retry_intervals": [], "every_s": 1, "cron": None, "created": time.time(),
            "last_fired": None, "last_batch": None, "fired": 0}  # fmt: skip
    for name, fields in FORGED_SCHEDULES.items():
        conn.hset(SCHEDULES_KEY, name, json.dumps({**base, "name": name, **fields}))
    conn.hset(SCHEDULES_KEY, "not-json", "{")
    conn.hset(SCHEDULES_KEY, "nested", "[" * 100_000)
    conn.hset(SCHEDULES_KEY, "x\x1b[2J", "[]")


def test_forged_schedules_are_listed_as_unreadable_and_can_be_removed(cli, conn):
    forge_schedules(conn)
    good = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--every", "1h", "--name", "good")
    assert_clean(good)
    listed = cli("producer_main.py", "--schedules")
    assert_clean(listed)
    assert "good" in listed.stdout and "every 1h" in listed.stdout
    for name in [*FORGED_SCHEDULES, "not-json", "nested"]:
        assert f"the schedule record '{name}' cannot be read" in listed.stderr, (name, listed.stderr)
    assert "\x1b" not in listed.stdout + listed.stderr and "x\\x1b[2J" in listed.stderr
    as_json = cli("producer_main.py", "--schedules", "--json")
    assert_clean(as_json)
    assert [record["name"] for record in map(json.loads, as_json.stdout.splitlines())] == ["good"]
    removed = cli("producer_main.py", "--unschedule", "x\x1b[2J")  # a name the producer refuses, but stored
    assert_clean(removed)
    assert not conn.hexists(SCHEDULES_KEY, "x\x1b[2J")
    refused = cli("producer_main.py", "--unschedule", "x y")
    assert_clean(refused, 2)


def test_forged_schedules_never_fire_nor_stop_the_good_one_firing(cli, conn, consumer):
    forge_schedules(conn)
    good = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--every", "1s", "--name", "good")
    assert_clean(good)
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, WORKBENCH_SCHEDULER_LEASE_S="2")
    output = Output(process)

    def good_fired() -> int:
        return json.loads(conn.hget(SCHEDULES_KEY, "good"))["fired"]

    wait_for(lambda: good_fired() >= 2, "the good schedule to fire twice")
    assert process.poll() is None
    for name in FORGED_SCHEDULES:
        assert json.loads(conn.hget(SCHEDULES_KEY, name)).get("fired") == 0, name
    process.send_signal(signal.SIGINT)
    text = output.finish()
    assert "Traceback" not in text and "scheduler error" not in text, text


#: Batch record fields no producer writes; each batch is still listed and shown, never a traceback.
FORGED_BATCH_FIELDS = [
    {"created": "1e400"}, {"created": "nan"}, {"created_at": "\x1b[2J[blink]x"},
    {"created_at": "9999-12-31T23:59:59-01:00"}, {"scheduled_for": "0001-01-01T00:00:00+01:00"},
    {"scheduled_for": "soon"}, {"count": "-5"}, {"split": "0"},
    {"params": "[1,2]"}, {"params": "[" * 100_000}, {"timeout": "99999999999999999999"}, {"task": "s\x1b]8;;x\x07"},
]  # fmt: skip


def test_forged_batch_records_are_listed_and_shown_without_a_traceback(cli, conn):
    ids = []
    for number, fields in enumerate(FORGED_BATCH_FIELDS):
        batch_id = f"{number:012x}"
        record = {"id": batch_id, "task": "sleep", "queue": "queue_one", "params": "{}", "split": "1", "count": "1",
                  "created_at": "2026-01-01T00:00:00+00:00", "created": "1767225600.0", "timeout": "0",
                  "retries": "0", "scheduled_for": ""}  # fmt: skip
        conn.hset(f"workbench:batch:{batch_id}", mapping={**record, **fields})
        conn.rpush(f"workbench:batch:{batch_id}:jobs", "gone-job")
        conn.zadd("workbench:batches", {batch_id: 1767225600 + number})
        ids.append(batch_id)
    listed = cli("producer_main.py", "--batches")
    assert_clean(listed)
    assert all(batch_id in listed.stdout for batch_id in ids), listed.stdout
    assert "\x1b" not in listed.stdout + listed.stderr
    # One batch's page shows several forged fields at once (each entry point start costs a second).
    several = {"created_at": "9999-12-31T23:59:59-01:00", "params": "[" * 100_000,
               "scheduled_for": "0001-01-01T00:00:00+01:00", "task": "\x1b[2J"}  # fmt: skip
    conn.hset(f"workbench:batch:{ids[0]}", mapping=several)
    shown = cli("producer_main.py", "--batch", ids[0])
    assert_clean(shown)
    assert "\x1b" not in shown.stdout + shown.stderr
    as_json = cli("producer_main.py", "--batch", ids[0], "--json")
    assert_clean(as_json)
    assert json.loads(as_json.stdout.splitlines()[0])["task"] == "\x1b[2J"  # exact in JSON


def test_batch_keys_of_another_type_are_listed_as_unreadable_by_the_producer(cli, conn):
    from workbench import batches

    job = make_queue("queue_one", conn).enqueue("task_def.sleep.sleep", seconds=0)
    for batch_id in ("0000000000b0", "0000000000b1", "0000000000b2"):
        with conn.pipeline() as pipe:
            batches.write(pipe, batch_id, task="sleep", queue="queue_one", params={}, job_ids=[job.id, "forged-job"])
            pipe.execute()
    conn.set("rq:job:forged-job", "a string")  # a job of the batch: not a hash
    conn.set(batches.record_key("0000000000b1"), "a string")
    conn.delete(batches.jobs_key("0000000000b2"))
    conn.set(batches.jobs_key("0000000000b2"), "a string")
    conn.zadd(batches.BATCHES_KEY, {"\x1b[31m[bold]x": 1, b"\xff\xfe": 2})
    listed = cli("producer_main.py", "--batches", "--json")
    assert_clean(listed)
    rows = {row["id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows["0000000000b0"]["count"] == 2 and "unreadable" not in rows["0000000000b0"]
    assert rows["0000000000b1"]["unreadable"] == "its record (workbench:batch:0000000000b1) is not a hash"
    assert rows["0000000000b2"]["unreadable"] == "its job list (workbench:batch:0000000000b2:jobs) is not a list"
    assert rows["\x1b[31m[bold]x"]["unreadable"] == "not a batch id the producer writes"
    table = cli("producer_main.py", "--batches", COLUMNS="200")
    assert_clean(table)
    assert "\x1b" not in table.stdout and "\\x1b[31m[bold]x" in table.stdout, table.stdout
    assert "unreadable: its record (workbench:batch:0000000000b1) is not a hash" in table.stdout
    shown = cli("producer_main.py", "--batch", "0000000000b0", COLUMNS="200")
    assert_clean(shown)
    assert "forged-job" in shown.stdout and "the job's record is malformed" in shown.stdout, shown.stdout
    # the index itself of another type: read in-process (each entry point start costs seconds)
    conn.delete(batches.BATCHES_KEY)
    conn.set(batches.BATCHES_KEY, "a string")
    [index] = batches.recent(conn)
    assert (index.id, index.unreadable) == (batches.BATCHES_KEY, "the batch index is not a sorted set")


def test_worker_registries_of_another_type_are_said_not_fatal(cli, conn):
    forge_worker(conn, "rq:worker:good", hostname="fine-host")
    conn.sadd("rq:workers", b"rq:worker:\xff\xfe")
    listed = cli("kill_thread/list_workers.py", "--json")
    assert_clean(listed)
    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows["good"]["hostname"] == "fine-host"
    assert rows["rq:workers"]["unreadable"] == "1 member(s) of RQ's worker registry rq:workers are not text (left out)"
    conn.delete("rq:workers")
    conn.set("rq:workers", "a string")
    conn.set("rq:workers:queue_one", "a string")
    table = cli("kill_thread/list_workers.py")
    assert_clean(table)
    assert "RQ's worker registry rq:workers holds another type than a set" in table.stderr
    sent = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--json")
    assert_clean(sent)  # queued, and said so: the worker count is not a reason to fail after the jobs went in
    assert json.loads(sent.stdout.splitlines()[0])["count"] == 1


def test_the_consumer_carries_on_past_supervision_keys_of_another_type(conn, consumer):
    """The janitor's keys forged (the workbench's worker set, a dead worker's execution set): said once, not fatal."""
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, WORKBENCH_JANITOR_S="0.5")
    output = Output(process)
    conn.set("workbench:workers", "not a set")
    conn.sadd("rq:workers", "rq:worker:ghost")  # a registered worker with no liveness key: the janitor looks at it
    conn.set("rq:executions:ghost", "not a set")
    output.wait_for("a key may hold data the workbench did not write")
    from task_def.primes import count_primes

    job = make_queue("queue_one", conn).enqueue(count_primes, limit=100)
    wait_for(lambda: job.get_status(refresh=True) == "finished", "a job after the keys were forged")
    assert process.poll() is None, output.text
    process.send_signal(signal.SIGINT)
    text = output.finish()
    assert process.returncode == 0, text
    assert "Traceback" not in text
