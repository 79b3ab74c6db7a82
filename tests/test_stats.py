"""workbench.stats: what workers record as jobs end, and what the dashboard reads back, on a real broker."""

from __future__ import annotations

from rq.job import JobStatus

from workbench import defaults, stats
from workbench.jobs import make_queue
from workbench.worker import WorkbenchWorker

from .dashboard_support import SLEEP

NOW = 1_800_000_000.0  # a fixed moment, so minutes and hours are known


def test_counts_per_minute_and_duration_percentiles_over_the_hour_and_the_day(conn):
    for seconds in [0.1] * 90 + [2.0] * 9 + [30.0]:
        stats.record_end(conn, "q", "sleep", stats.FINISHED, seconds, now=NOW)
    stats.record_end(conn, "q", "sleep", stats.FAILED, 1.0, now=NOW - 120)
    stats.record_end(conn, "q", "sleep", stats.FINISHED, 500.0, now=NOW - 3 * 3600)  # outside the hour, inside the day
    minutes = stats.queue_minutes(conn, ["q"], now=NOW)["q"]
    assert len(minutes) == 60 and minutes[-1].minute == stats.minute_of(NOW)
    assert minutes[-1].counts == {"finished": 100, "failed": 0, "stopped": 0, "retried": 0}
    assert minutes[-3].counts["failed"] == 1
    sleep = stats.task_durations(conn, now=NOW)["sleep"]
    hour, day = sleep["hour"], sleep["day"]
    assert hour.count == 101 and day.count == 102
    assert 0.1 <= hour.p50 <= 0.1 * stats.RATIO  # an estimate within one bucket, never below the truth
    assert 2.0 <= hour.p95 <= 2.0 * stats.RATIO
    assert hour.max == 30.0 and day.max == 500.0


def test_minute_and_hour_keys_expire_and_task_names_stay_bounded(conn):
    stats.record_end(conn, "q", stats.task_name("task_def.sleep.sleep"), stats.FINISHED, 0.5, now=NOW)
    stats.record_end(conn, "q", stats.task_name("os.system"), stats.FAILED, 0.5, now=NOW)
    assert stats.task_names(conn) == ["other", "sleep"]
    for key in conn.keys("workbench:stats:*"):
        name = key.decode()
        if ":total:" in name or name == stats.TASKS_KEY:
            assert conn.ttl(key) == -1, name  # cumulative counters, bounded by the catalog and the queues
        else:
            assert 0 < conn.ttl(key) <= defaults.STATS_HOUR_TTL_S, name


def test_queue_depth_is_sampled_once_a_minute_whoever_asks(conn):
    queue = make_queue("deep", conn)
    for _ in range(3):
        queue.enqueue(SLEEP, seconds=0)
    assert stats.sample_depths(conn, now=NOW) is True
    queue.enqueue(SLEEP, seconds=0)
    assert stats.sample_depths(conn, now=NOW + 10) is False  # same minute: another sampler already took it
    assert stats.sample_depths(conn, now=NOW + 60) is True
    minutes = stats.queue_minutes(conn, ["deep"], now=NOW + 60)["deep"]
    assert [(m.queued, m.started) for m in minutes[-2:]] == [(3, 0), (4, 0)]
    assert minutes[0].queued is None  # no sample: a gap, not a zero


def test_the_worker_records_a_jobs_end_in_the_transaction_that_finishes_it(conn):
    queue = make_queue("txn", conn)
    job = queue.enqueue(SLEEP, seconds=0)
    worker = WorkbenchWorker([queue], connection=conn)
    worker._ending.job = job  # as handle_job_success / handle_job_failure set it
    job.started_at, job.ended_at = job.created_at, job.created_at
    with conn.pipeline() as pipe:
        pipe.multi()
        worker.increment_successful_job_count(pipe)
        assert conn.keys("workbench:stats:*") == []  # queued in the transaction, not yet written
        pipe.execute()
    minute = stats.queue_minutes(conn, ["txn"])["txn"][-1]
    assert minute.counts["finished"] == 1
    job.set_status(JobStatus.STOPPED)
    with conn.pipeline() as pipe:
        worker.increment_failed_job_count(pipe)
        pipe.execute()
    assert stats.queue_minutes(conn, ["txn"])["txn"][-1].counts["stopped"] == 1
    assert int(conn.hget(worker.key, "failed_job_count") or 0) == 1  # RQ's own count still kept


def test_a_forged_statistics_key_never_stops_a_job_from_being_recorded(conn, consumer):
    from .supervision_support import FAST, enqueue_sleep, status
    from .support import wait_for

    conn.set(stats.TASKS_KEY, "not a set")  # wrong type: that figure is lost, nothing else
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    jobs = [enqueue_sleep(conn, 0).id for _ in range(3)]
    wait_for(lambda: all(status(conn, job_id) == "finished" for job_id in jobs), "the jobs to finish")
    assert sum(m.counts["finished"] for m in stats.queue_minutes(conn, ["queue_one"])["queue_one"]) == 3
    assert conn.get(stats.TASKS_KEY) == b"not a set"
