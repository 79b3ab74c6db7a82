"""Schedules on real consumers: delayed batches, periodic ones, retry back-offs, one firing per period.

The consumers run RQ's scheduler themselves (no extra process); one of them holds the schedule
lease and fires the periodic schedules, and another takes over when it dies.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime

from rq.cron import CronScheduler, get_cron_job_ids

from workbench import batches, schedules
from workbench.jobs import fetch_job, make_queue

from .supervision_support import FAST, Output
from .support import batch_record, free_port, job_records, wait_for

#: Leases lapse in two seconds here, so a dead scheduler is replaced within the test.
QUICK = {**FAST, "WORKBENCH_SCHEDULER_LEASE_S": "2"}


def fired(conn, name: str) -> int:
    found = [schedule for schedule in schedules.load_all(conn)[0] if schedule.name == name]
    return found[0].fired if found else 0


def test_a_delayed_batch_waits_then_runs_on_a_running_consumer(cli, consumer, conn):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    result = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--in", "2s", "--json")
    assert result.returncode == 0, result.stderr
    head, [job] = batch_record(result.stdout), job_records(result.stdout)
    assert head["scheduled_for"] and job["status"] == "scheduled"
    assert make_queue("queue_one", conn).scheduled_job_registry.get_job_ids() == [job["id"]]
    wait_for(lambda: fetch_job(job["id"], conn).get_status(refresh=True) == "finished", "the delayed job to run")
    at = datetime.now().astimezone().replace(microsecond=0)
    later = at.replace(second=0).isoformat(timespec="minutes")  # a minute in the past or now: refused
    refused = cli("producer_main.py", "--task", "sleep", "--at", later)
    assert refused.returncode == 2 and "is in the past" in refused.stderr
    waited = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--in", "1s", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert "1 of 1 finished" in waited.stdout


def test_retry_back_offs_fire_with_no_extra_process(cli, consumer, conn):
    closed = free_port()
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, SCRAPE_ALLOWED_HOSTS=f"127.0.0.1:{closed}")
    result = cli("producer_main.py", "--task", "scrape", "--param", f"url=http://127.0.0.1:{closed}/", "--retries",
                 "2", "--retry-interval", "1", "--wait", "--json")  # fmt: skip
    assert result.returncode == 1
    [record] = job_records(result.stdout)
    assert record["status"] == "failed" and "could not connect" in record["error"]
    job = fetch_job(record["id"], conn)
    # Both retries ran. With a back-off RQ parks a retry in the scheduled registry, where it would stay
    # forever if no scheduler ran: the consumer's own scheduler moved it back onto the queue each time.
    assert job.retries_left == 0 and job.retry_intervals == [1]
    assert make_queue("queue_one", conn).scheduled_job_registry.count == 0


def test_a_periodic_schedule_fires_once_per_period_across_consumers_and_survives_its_scheduler(
    cli, consumer, conn, env
):
    first = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **QUICK)
    second = consumer("--workers", "1", "--queue", "queue_one", wait_workers=2, **QUICK)
    outputs = {first.pid: Output(first), second.pid: Output(second)}
    made = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--every", "1s", "--name", "beat")
    assert made.returncode == 0, made.stderr
    assert "Schedule beat: 1 × sleep every 1s on queue_one" in made.stderr
    wait_for(lambda: fired(conn, "beat") >= 4, "four firings")
    holder = schedules.lease_holder(conn)
    assert holder is not None
    holder_pid = int(holder.split(":")[1])
    assert holder_pid in outputs
    # Exactly once per period: RQ's own cron history of the schedule never holds two runs within one period.
    history = sorted(score for _, score in conn.zrange("rq:cron_job:beat:jobs", 0, -1, withscores=True))
    assert len(history) == fired(conn, "beat") == len(get_cron_job_ids("beat", conn))
    assert all(later - earlier >= 1.0 for earlier, later in zip(history, history[1:], strict=False))
    assert any(s.name.startswith("workbench:") for s in CronScheduler.all(conn))  # RQ's tools see who schedules
    # The scheduling consumer dies without a word: the other one takes the lease over and goes on.
    os.killpg(holder_pid, signal.SIGKILL)
    before = fired(conn, "beat")
    wait_for(lambda: fired(conn, "beat") >= before + 3, "firings after the scheduler died", timeout=30)
    survivor = next(pid for pid in outputs if pid != holder_pid)
    assert schedules.lease_holder(conn).split(":")[1] == str(survivor)
    outputs[survivor].wait_for("now fires the periodic schedules")
    history = sorted(score for _, score in conn.zrange("rq:cron_job:beat:jobs", 0, -1, withscores=True))
    assert all(later - earlier >= 1.0 for earlier, later in zip(history, history[1:], strict=False))
    assert make_queue("queue_one", conn).finished_job_registry.count >= before
    listed = cli("producer_main.py", "--schedules", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["name"], row["every"], row["task"]) == ("beat", "1s", "sleep")
    last = batches.load(conn, row["last_batch"])
    assert last is not None and last.task == "sleep"  # every firing is a named batch
    assert cli("producer_main.py", "--unschedule", "beat").returncode == 0
    assert cli("producer_main.py", "--unschedule", "beat").returncode == 1


def test_a_cron_schedule_is_registered_with_its_next_minute_and_names_are_unique(cli, conn):
    made = cli("producer_main.py", "--task", "fibonacci", "--param", "n=10", "--cron", "*/5 * * * *", "--json")
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    following = datetime.fromisoformat(record["next_run"])
    assert following > datetime.now(UTC) and following.astimezone().minute % 5 == 0 and following.second == 0
    assert (record["name"], record["cron"], record["params"]) == ("fibonacci", "*/5 * * * *", {"n": 10})
    again = cli("producer_main.py", "--task", "fibonacci", "--cron", "0 * * * *")
    assert again.returncode == 1 and "a schedule named fibonacci exists already" in again.stderr
    named = cli("producer_main.py", "--task", "fibonacci", "--cron", "0 * * * *", "--name", "hourly")
    assert named.returncode == 0, named.stderr
    assert "no consumer runs a scheduler right now" in named.stderr
    listed = cli("producer_main.py", "--schedules")
    assert "fibonacci" in listed.stdout and "hourly" in listed.stdout and "cron 0 * * * *" in listed.stdout


def test_a_forged_schedule_runs_nothing_outside_the_catalog(consumer, conn):
    forged = schedules.Schedule(name="evil", task="os.system", params={"command": "touch /tmp/pwned"},
                                queue="queue_one", every_s=1)  # fmt: skip
    conn.hset(schedules.SCHEDULES_KEY, "evil", forged.to_json())
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **QUICK)
    output = Output(process)
    output.wait_for("schedule evil cannot fire: not a catalog task: os.system")
    assert make_queue("queue_one", conn).count == 0 and fired(conn, "evil") == 0


def test_a_malformed_scheduled_record_is_quarantined_and_does_not_hold_up_the_others(cli, consumer, conn):
    good = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--in", "1s", "--json")
    [job] = job_records(good.stdout)
    registry = make_queue("queue_one", conn).scheduled_job_registry
    conn.hset("rq:job:forged", mapping={"origin": "queue_one", "status": "scheduled"})  # no data: RQ cannot load it
    conn.zadd(registry.key, {"forged": 1})  # due long ago
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    output = Output(process)
    wait_for(lambda: fetch_job(job["id"], conn).get_status(refresh=True) == "finished", "the good delayed job")
    output.wait_for("quarantined malformed scheduled job record forged")
    assert registry.get_job_ids() == [] and conn.hget("workbench:quarantine", "forged") is not None
