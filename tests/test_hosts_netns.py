"""Several machines for real: a broker host, three consumer hosts and a producer host, each a network
namespace with its own address, running the real entry points (`make test-hosts`).

The hosts share one host name (namespaces share the UTS namespace), as cloned VMs or containers may:
worker names stay unique and the address tells the hosts apart. Cutting a host's link (`ip link set
eth0 down`) is a cut cable: its processes run on, unreachable. Marker files on the shared file system
show which host ran what and when.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import fencing

from . import marker_tasks
from .netns import Host, Lan, Reader, unavailable
from .support import ROOT, job_records, wait_for

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(300)]

WHY_NOT = unavailable()
if WHY_NOT:
    pytestmark.append(pytest.mark.skip(reason=f"network namespaces unavailable: {WHY_NOT}"))

PASSWORD = "hosts-test-secret"
BROKER_ADDRESS = "192.0.2.11"
CONSUMER_ADDRESSES = ("192.0.2.21", "192.0.2.22", "192.0.2.23")
PRODUCER_ADDRESS = "192.0.2.31"
URL = f"redis://:{PASSWORD}@{BROKER_ADDRESS}:6379/0"
QUEUE = "hosts"
#: Liveness shortened for the test, the relation intact: lease 9 s, stop grace 3 s, margin 3 s, window 16 s.
TIMINGS = {"WORKBENCH_LIVENESS_TTL_S": "15", "WORKBENCH_HEARTBEAT_S": "1", "WORKBENCH_JANITOR_S": "1"}
NUMBERS = fencing.timings(TIMINGS)


class Cluster:
    """The five hosts and what runs on them."""

    def __init__(self, lan: Lan, tmp: Path) -> None:
        self.lan, self.tmp = lan, tmp
        base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "BROKER_"))}
        self.env = {**base, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "WORKBENCH_DATA_DIR": str(tmp / "data")}
        self.broker = lan.host("b", BROKER_ADDRESS)
        self.consumers = [lan.host(f"c{i}", address) for i, address in enumerate(CONSUMER_ADDRESSES, 1)]
        self.producer = lan.host("p", PRODUCER_ADDRESS)
        self.outputs: dict[str, Reader] = {}

    def start_broker(self) -> Reader:
        process = self.lan.spawn(
            self.broker,
            [sys.executable, "broker_main.py", "--bind", BROKER_ADDRESS, "--port", "6379", "--data-dir",
             str(self.tmp / "broker")],  # fmt: skip
            {**self.env, "BROKER_PASSWORD": PASSWORD},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        reader = Reader(process)
        reader.wait_for(f"REDIS_URL=redis://:****@{BROKER_ADDRESS}:6379/0")
        return reader

    def start_consumer(self, host: Host, workers: int = 1) -> Reader:
        process = self.lan.spawn(
            host,
            [sys.executable, "tests/marker_consumer.py", "--workers", str(workers), "--queue", QUEUE],
            {**self.env, **TIMINGS, "REDIS_URL": URL},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.outputs[host.address] = Reader(process)
        return self.outputs[host.address]

    def on_producer(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.lan.run(self.producer, [sys.executable, *argv], {**self.env, "REDIS_URL": URL}, timeout, cwd=ROOT)

    def workers(self) -> list[dict]:
        listed = self.on_producer("kill_thread/list_workers.py", "--json")
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]

    def jobs(self, *ids: str) -> dict[str, dict]:
        probe = self.on_producer("tests/hosts_probe.py", "jobs", *ids)
        assert probe.returncode == 0, probe.stderr
        return json.loads(probe.stdout)

    def enqueue_mark(self, folder: Path, seconds: float, retries: int) -> str:
        probe = self.on_producer("tests/hosts_probe.py", "mark", str(folder), str(seconds), str(retries), QUEUE)
        assert probe.returncode == 0, probe.stderr
        return json.loads(probe.stdout)["id"]

    def wait_workers(self, count: int, timeout: float = 40) -> list[dict]:
        def listed() -> list[dict] | None:
            workers = self.workers()
            return workers if len(workers) == count else None

        return wait_for(listed, f"{count} workers", timeout, 0.5)


@pytest.fixture
def cluster(tmp_path):
    lan = Lan()
    try:
        cluster = Cluster(lan, tmp_path)
        cluster.start_broker()
        yield cluster
    finally:
        lan.close()


def runs_of(folder: Path, job_id: str) -> list[dict]:
    """The runs of one job from its marker files: pid, start, end (finished) and stopped times in ns."""
    found = []
    for start in sorted(folder.glob(f"{job_id}.*.start")):
        stem = start.name[: -len(".start")]
        _, pid, t0 = stem.rsplit(".", 2)
        end, stopped = folder / f"{stem}.end", folder / f"{stem}.stopped"
        found.append(
            {
                "pid": int(pid),
                "start": int(t0),
                "end": end.stat().st_mtime_ns if end.exists() else None,
                "stopped": stopped.stat().st_mtime_ns if stopped.exists() else None,
            }
        )
    return sorted(found, key=lambda run: run["start"])


def host_of(cluster: Cluster, worker_name: str) -> Host:
    address = next(w["address"] for w in cluster.workers() if w["name"] == worker_name)
    return next(h for h in cluster.consumers if h.address == address)


def test_three_consumer_hosts_serve_one_queue_and_each_host_can_be_listed_and_stopped(cluster):
    for host in cluster.consumers:
        cluster.start_consumer(host, workers=2)
    workers = cluster.wait_workers(6)
    assert {w["address"] for w in workers} == set(CONSUMER_ADDRESSES)  # as the broker sees each host
    assert len({w["hostname"] for w in workers}) == 1  # one shared host name...
    assert len({w["name"] for w in workers}) == 6  # ...and still six distinct workers
    assert all(w["alive"] for w in workers)

    table = cluster.on_producer("kill_thread/list_workers.py")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()[1:]
    assert sorted(line.split()[2] for line in rows) == sorted(CONSUMER_ADDRESSES * 2)

    enqueued = cluster.on_producer(
        "producer_main.py", "--task", "sleep", "--param", "seconds=1", "--count", "12", "--queue", QUEUE, "--wait",
        "--json", timeout=90,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    ids = [record["id"] for record in job_records(enqueued.stdout)]  # after the batch line
    jobs = cluster.jobs(*ids)
    assert {job["status"] for job in jobs.values()} == {"finished"}
    names = {w["name"]: w["address"] for w in workers}
    assert len({names[job["worker"]] for job in jobs.values()}) >= 2  # served from several hosts

    middle = cluster.consumers[1]
    stopped = cluster.on_producer("kill_thread/kill_workers.py", "--host", middle.address, "--grace", "30")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.count(f"at {middle.address}") == 2
    cluster.outputs[middle.address].process.wait(30)  # that host's consumer exits, its workers stopped
    left = cluster.wait_workers(4)
    assert middle.address not in {w["address"] for w in left}


def test_a_cut_link_mid_job_is_fenced_recovered_elsewhere_and_never_run_twice_at_once(cluster, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    for host in cluster.consumers:
        cluster.start_consumer(host)
    cluster.wait_workers(3)
    job_id = cluster.enqueue_mark(markers, seconds=25, retries=1)
    wait_for(lambda: cluster.jobs(job_id)[job_id]["status"] == "started", "the job to start", 30, 0.5)
    first_worker = cluster.jobs(job_id)[job_id]["worker"]
    cut = host_of(cluster, first_worker)
    cut_output = cluster.outputs[cut.address]

    cluster.lan.cut(cut)
    cut_at = time.time_ns()
    # The cut-off worker stops its own job when its lease runs out...
    cut_output.wait_for(f"stopping job(s) {job_id}", timeout=NUMBERS.lease + 10)
    first = wait_for(lambda: (r := runs_of(markers, job_id)) and r[0]["stopped"] and r[0], "the first run stopped", 10)
    # ...and the job is run again by another host, after the first run stopped, within the liveness window.
    rerun = wait_for(lambda: len(r := runs_of(markers, job_id)) == 2 and r[1], "a second run elsewhere", 60, 0.5)
    assert rerun["pid"] != first["pid"]
    assert first["stopped"] <= rerun["start"]  # never at the same time
    assert (rerun["start"] - cut_at) / 1e9 <= NUMBERS.window + 5
    second_worker = cluster.jobs(job_id)[job_id]["worker"]
    assert host_of(cluster, second_worker) != cut

    # The link comes back while the re-run runs: the cut-off worker's late end is refused, and it carries on.
    cluster.lan.restore(cut)
    cut_output.wait_for("reached the broker again", timeout=30)
    cut_output.wait_for(f"job {job_id} was recovered elsewhere", timeout=30)
    wait_for(lambda: len([w for w in cluster.workers() if w["alive"]]) == 3, "the cut host's worker back", 30, 0.5)
    wait_for(lambda: cluster.jobs(job_id)[job_id]["status"] == "finished", "the re-run to finish", 60, 0.5)
    record = cluster.jobs(job_id)[job_id]
    assert record["result"] == {"pid": rerun["pid"]}  # the re-run's result, not overwritten
    assert record["generation"] >= 2
    runs = runs_of(markers, job_id)
    assert len(runs) == 2 and runs[1]["end"] is not None
    assert cut_output.process.poll() is None


def test_a_short_blip_stops_and_requeues_nothing(cluster, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    for host in cluster.consumers:
        cluster.start_consumer(host)
    cluster.wait_workers(3)
    job_id = cluster.enqueue_mark(markers, seconds=8, retries=1)
    wait_for(lambda: cluster.jobs(job_id)[job_id]["status"] == "started", "the job to start", 30, 0.5)
    worker = cluster.jobs(job_id)[job_id]["worker"]
    host = host_of(cluster, worker)
    blip = max(NUMBERS.blip - 2, 1.0)  # a few seconds, shorter than any outage that stops a job
    cluster.lan.cut(host)
    time.sleep(blip)
    cluster.lan.restore(host)
    wait_for(lambda: cluster.jobs(job_id)[job_id]["status"] == "finished", "the job to finish", 60, 0.5)
    record = cluster.jobs(job_id)[job_id]
    assert record["worker"] == worker and record["generation"] == 1
    runs = runs_of(markers, job_id)
    assert len(runs) == 1 and runs[0]["end"] is not None and runs[0]["stopped"] is None
    assert "lost the broker" not in cluster.outputs[host.address].text
    assert len(cluster.workers()) == 3
    assert not marker_tasks.overlaps(marker_tasks.runs(markers)[job_id], {})
