"""High availability for real: a primary, a replica and three sentinels on hosts of their own, consumers
on two more and a client host (producers, dashboard, kill_thread), as network namespaces (`make test-ha`).

Everything talks to the broker through one Sentinel URL and is never restarted: the primary's
process is killed -9 (or its host's link is cut) while a producer enqueues and workers run jobs,
and the story goes on on the promoted replica. Marker files (tests/marker_tasks.py) show every run
of every job, so a run twice at once would show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workbench import defaults, fencing

from . import marker_tasks
from .netns import Host, Lan, Reader, unavailable
from .support import ROOT, wait_for

pytestmark = [pytest.mark.ha, pytest.mark.timeout(480)]

WHY_NOT = unavailable()
if WHY_NOT:
    pytestmark.append(pytest.mark.skip(reason=f"network namespaces unavailable: {WHY_NOT}"))

PASSWORD = "ha-test-secret"
PRIMARY, REPLICA = "192.0.2.11", "192.0.2.12"
SENTINELS = ("192.0.2.41", "192.0.2.42", "192.0.2.43")
CONSUMERS = ("192.0.2.21", "192.0.2.22")
CLIENT = "192.0.2.31"
PORT = 6379
URL = f"redis+sentinel://:{PASSWORD}@" + ",".join(f"{s}:{defaults.SENTINEL_PORT}" for s in SENTINELS) + "/workbench/0"
QUEUE = "ha"
#: The promise: a lost primary is replaced within 30 s.
PROMOTED_WITHIN_S = 30
#: The production liveness numbers (no shortened timings here): a failover must fit the blip they tolerate.
NUMBERS = fencing.timings({})


class HaCluster:
    """The eight hosts and what runs on them."""

    def __init__(self, lan: Lan, tmp: Path) -> None:
        self.lan, self.tmp = lan, tmp
        base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "BROKER_"))}
        self.env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
            "WORKBENCH_DATA_DIR": str(tmp / "data"),
            "WORKBENCH_TASKS": marker_tasks.MODULE,
        }
        self.primary = lan.host("p1", PRIMARY)
        self.replica = lan.host("p2", REPLICA)
        self.sentinels = [lan.host(f"s{i}", address) for i, address in enumerate(SENTINELS, 1)]
        self.consumers = [lan.host(f"c{i}", address) for i, address in enumerate(CONSUMERS, 1)]
        self.client = lan.host("cl", CLIENT)
        self.servers: dict[str, Reader] = {}
        self.outputs: dict[str, Reader] = {}
        self.markers = tmp / "markers"
        self.markers.mkdir()

    # -- the broker hosts -------------------------------------------------------------------------
    def start_server(self, host: Host, *args: str) -> Reader:
        process = self.lan.spawn(
            host,
            [sys.executable, "broker_main.py", "--bind", host.address, "--data-dir", str(self.tmp / host.name), *args],
            {**self.env, "BROKER_PASSWORD": PASSWORD},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.servers[host.address] = Reader(process)
        return self.servers[host.address]

    def start_broker(self) -> None:
        """Primary, replica, three sentinels; returns once every sentinel knows the replica and the others."""
        self.start_server(self.primary, "--port", str(PORT)).wait_for("REDIS_URL=redis://:****@")
        self.start_server(self.replica, "--port", str(PORT), "--replica-of", f"{PRIMARY}:{PORT}")
        for host in self.sentinels:
            self.start_server(host, "--sentinel", "--monitor", f"{PRIMARY}:{PORT}")
        for host in self.sentinels:
            self.servers[host.address].wait_for("REDIS_URL=redis+sentinel://:****@")

        def ready() -> bool:
            views = self.sentinel_views()
            return all(v.get("master") == f"{PRIMARY}:{PORT}" and v["replicas"] == 1 and v["sentinels"] == 3
                       for v in views)  # fmt: skip

        wait_for(ready, "the sentinels to know the primary, its replica and each other", 60, 0.5)

    def server_pid(self, host: Host) -> int:
        """The valkey-server process broker_main.py runs on `host`."""
        [child] = psutil.Process(self.servers[host.address].process.pid).children()
        return child.pid

    def sentinel_views(self) -> list[dict]:
        probe = self.on_client("tests/ha_probe.py", "sentinels", BROKER_PASSWORD=PASSWORD)
        assert probe.returncode == 0, probe.stderr
        return json.loads(probe.stdout)

    def primary_now(self) -> str | None:
        """The primary every sentinel names (with no down flag), or None while they disagree."""
        views = self.sentinel_views()
        masters = {v.get("master") for v in views if "down" not in v.get("flags", "down")}
        return masters.pop() if len(masters) == 1 and len(views) == len(SENTINELS) else None

    def role(self, address: str) -> dict:
        probe = self.on_client("tests/ha_probe.py", "role", f"{address}:{PORT}", BROKER_PASSWORD=PASSWORD)
        assert probe.returncode == 0, probe.stderr
        return json.loads(probe.stdout)

    # -- the other hosts --------------------------------------------------------------------------
    def start_consumer(self, host: Host, workers: int = 2) -> Reader:
        process = self.lan.spawn(
            host,
            [sys.executable, "tests/marker_consumer.py", "--workers", str(workers), "--queue", QUEUE],
            {**self.env, "REDIS_URL": URL},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.outputs[host.address] = Reader(process)
        return self.outputs[host.address]

    def spawn_on_client(self, *argv: str, **env: str) -> subprocess.Popen:
        return self.lan.spawn(
            self.client,
            [sys.executable, *argv],
            {**self.env, "REDIS_URL": URL, **env},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def on_client(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return self.lan.run(self.client, [sys.executable, *argv], {**self.env, "REDIS_URL": URL, **env}, timeout,
                            cwd=ROOT)  # fmt: skip

    def workers(self) -> list[dict]:
        listed = self.on_client("kill_thread/list_workers.py", "--json")
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]

    def wait_workers(self, count: int, timeout: float = 60) -> list[dict]:
        def alive() -> list[dict] | None:
            found = [w for w in self.workers() if w["alive"]]
            return found if len(found) == count else None

        return wait_for(alive, f"{count} live workers", timeout, 0.5)

    def jobs(self, ids: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(ids), 200):
            probe = self.on_client("tests/ha_probe.py", "jobs", *ids[start : start + 200])
            assert probe.returncode == 0, probe.stderr
            found.update(json.loads(probe.stdout))
        return found

    def dashboard_answers(self) -> bool:
        code = (
            "import urllib.request as u; "
            "print(u.urlopen('http://127.0.0.1:9181/0/data/workers.json', timeout=5).status)"
        )
        done = self.lan.run(self.client, [sys.executable, "-c", code], self.env, 20)
        return done.returncode == 0 and done.stdout.strip() == "200"

    def mark(self, seconds: float, count: int = 1) -> list[str]:
        done = self.on_client(
            "producer_main.py", "--task", "mark", "--param", f"folder={self.markers}", "--param", f"seconds={seconds}",
            "--count", str(count), "--queue", QUEUE, "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["id"] for line in done.stdout.splitlines()[1:]]


@pytest.fixture
def cluster(tmp_path):
    lan = Lan()
    try:
        cluster = HaCluster(lan, tmp_path)
        cluster.start_broker()
        yield cluster
    finally:
        lan.close()


def produced(process: subprocess.Popen) -> list[dict]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def all_finished(cluster: HaCluster, ids: list[str]) -> dict[str, dict] | None:
    jobs = cluster.jobs(ids)
    return jobs if all(job["status"] == "finished" for job in jobs.values()) else None


def assert_no_run_overlapped(cluster: HaCluster, ids: list[str]) -> None:
    runs = marker_tasks.runs(cluster.markers)
    for job_id in ids:
        assert job_id in runs, f"job {job_id} never ran"
        assert not marker_tasks.overlaps(runs[job_id], {}), f"job {job_id} ran twice at once: {runs[job_id]}"


def the_story_goes_on(cluster: HaCluster, failed_at: float, waiter: subprocess.Popen, producer: subprocess.Popen):
    """After the primary is lost: promoted within 30 s, and every console carries on without a restart."""
    promoted = wait_for(lambda: cluster.primary_now() == f"{REPLICA}:{PORT}", "the replica's promotion",
                        PROMOTED_WITHIN_S + 5, 0.25)  # fmt: skip
    took = time.time() - failed_at
    assert promoted and took <= PROMOTED_WITHIN_S, f"promoted after {took:.1f} s"
    assert cluster.role(REPLICA)["role"] == "master"

    # The producer that was waiting for its batch rides out the failover and reports every job finished.
    out, err = waiter.communicate(timeout=180)
    assert waiter.returncode == 0, err
    waited = [json.loads(line) for line in out.splitlines()[1:]]
    assert waited and {row["status"] for row in waited} == {"finished"}

    # The producer loop (one process throughout) went on enqueueing on the new primary; every batch it
    # was told is durable is there and ends finished, run once at a time.
    lines = produced(producer)
    durable = [line for line in lines if line.get("durable")]
    assert any(line["at"] < failed_at for line in durable)
    assert any(line["at"] > failed_at + took for line in durable), "no batch confirmed after the failover"
    ids = [job_id for line in durable for job_id in line["ids"]]
    jobs = wait_for(lambda: all_finished(cluster, ids), "every confirmed job to finish", 180, 1.0)
    assert len(jobs) == len(ids)
    assert_no_run_overlapped(cluster, ids)

    # The consumers were never restarted; their workers are all listed and alive on the new primary.
    for host in cluster.consumers:
        assert cluster.outputs[host.address].process.poll() is None
    workers = cluster.wait_workers(4)
    assert {w["address"] for w in workers} == set(CONSUMERS)
    # Nothing is left "started": the queue's started registry is empty once the jobs have ended.
    started = cluster.on_client("tests/ha_probe.py", "started", QUEUE)
    assert started.returncode == 0 and started.stdout.strip() == "0", started.stdout + started.stderr

    # The dashboard, started before the failure, answers on the new primary.
    wait_for(cluster.dashboard_answers, "the dashboard to answer after the failover", 30, 1.0)

    # kill_thread works on the new primary: a running job is stopped where it runs.
    [long_job] = cluster.mark(60)
    wait_for(lambda: cluster.jobs([long_job])[long_job]["status"] == "started", "the long job to start", 30, 0.5)
    killed = cluster.on_client("kill_thread/kill_job.py", long_job)  # through the worker's command channel
    assert killed.returncode == 0, killed.stdout + killed.stderr
    wait_for(lambda: cluster.jobs([long_job])[long_job]["status"] == "stopped", "the job to end stopped", 30, 0.5)

    # Each consumer said what happened, in its own words, and fenced no running job: the failover fit
    # inside the outage workers ride out (NUMBERS.blip).
    for host in cluster.consumers:
        assert "failed over" in cluster.outputs[host.address].text
        assert "lost the broker for" not in cluster.outputs[host.address].text


def start_the_story(cluster: HaCluster) -> tuple[subprocess.Popen, subprocess.Popen]:
    """Consumers, dashboard, a producer waiting for its batch and a producer loop; jobs running."""
    for host in cluster.consumers:
        cluster.start_consumer(host)
    cluster.wait_workers(4)
    cluster.lan.spawn(
        cluster.client, [sys.executable, "dashboard_main.py", "--port", "9181"], {**cluster.env, "REDIS_URL": URL},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(cluster.dashboard_answers, "the dashboard", 40, 1.0)
    # A task that reports its progress as it runs: those writes meet the failover too.
    waiter = cluster.spawn_on_client(
        "producer_main.py", "--task", "sleep", "--param", "seconds=3", "--count", "8", "--queue", QUEUE, "--wait",
        "--json",
    )  # fmt: skip
    producer = cluster.spawn_on_client("tests/ha_probe.py", "produce", "30", QUEUE, str(cluster.markers), "0.2")
    wait_for(lambda: len(list(cluster.markers.glob("*.start"))) >= 6, "the workers busy", 60, 0.2)
    time.sleep(2)  # a few confirmed batches before the failure
    return waiter, producer


def test_killing_the_primary_fails_over_and_every_queued_job_finishes(cluster):
    assert NUMBERS.blip >= 10  # the outage a failover must fit in: sentinel timings are chosen for it
    waiter, producer = start_the_story(cluster)
    failed_at = time.time()
    os.kill(cluster.server_pid(cluster.primary), signal.SIGKILL)
    the_story_goes_on(cluster, failed_at, waiter, producer)


def test_cutting_the_primary_hosts_link_fails_over_and_the_old_primary_rejoins_as_a_replica(cluster):
    waiter, producer = start_the_story(cluster)
    failed_at = time.time()
    cluster.lan.cut(cluster.primary)
    the_story_goes_on(cluster, failed_at, waiter, producer)
    # The link comes back: the sentinels make the old primary a replica of the new one (its writes since
    # the cut, which no client could make, are dropped).
    cluster.lan.restore(cluster.primary)
    wait_for(lambda: cluster.role(PRIMARY) == {"role": "slave", "primary": f"{REPLICA}:{PORT}"},
             "the old primary to rejoin as a replica", 60, 1.0)  # fmt: skip


def test_only_what_a_replica_confirmed_is_promised_and_survives_a_failover(cluster):
    """Without a consumer, jobs stay queued, so the test can see exactly which ones survived."""
    confirmed = [job_id for _ in range(3) for job_id in cluster.mark(0, count=3)]
    # The primary can still serve clients, but nothing it writes reaches its replica any more.
    blocked = cluster.lan.run(cluster.primary, ["iptables", "-A", "OUTPUT", "-d", REPLICA, "-p", "tcp", "-j", "DROP"],
                              cluster.env)  # fmt: skip
    assert blocked.returncode == 0, blocked.stderr
    unconfirmed = cluster.on_client(
        "producer_main.py", "--task", "mark", "--param", f"folder={cluster.markers}", "--count", "3", "--queue",
        QUEUE, "--json", WORKBENCH_CONFIRM_TIMEOUT_S="2",
    )  # fmt: skip
    assert unconfirmed.returncode == 1
    [error] = unconfirmed.stderr.strip().splitlines()
    assert "queued but not confirmed durable" in error and "no replica confirmed it within 2 s" in error
    head, *rows = (json.loads(line) for line in unconfirmed.stdout.splitlines())
    lost = [row["id"] for row in rows]
    assert head["durable"] is False and len(lost) == 3 and all(job_id in error for job_id in lost)

    os.kill(cluster.server_pid(cluster.primary), signal.SIGKILL)
    wait_for(lambda: cluster.primary_now() == f"{REPLICA}:{PORT}", "the replica's promotion", PROMOTED_WITHIN_S, 0.5)
    jobs = cluster.jobs(confirmed + lost)
    assert all(jobs[job_id]["status"] == "queued" for job_id in confirmed)  # every confirmed job is there
    assert all(jobs[job_id]["status"] == "missing" for job_id in lost)  # the unconfirmed ones were lost, as said

    # The same producer command works on the new primary (no replica any more: confirmed on its disk).
    after = cluster.mark(0)
    assert cluster.jobs(after)[after[0]]["status"] == "queued"
