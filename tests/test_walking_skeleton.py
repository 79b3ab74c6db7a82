"""The walking skeleton, as a new user meets it: broker found or started, jobs run, errors plain."""

from __future__ import annotations

import subprocess
import sys
import time

import redis

from workbench.broker import stop_embedded
from workbench.processes import alive

from .support import ROOT, free_port, job_records, wait_for


def test_jobs_enqueued_by_flags_run_on_real_workers(cli, consumer):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    done = cli(
        "producer_main.py", "--task", "count_primes", "--param", "limit=1000000", "--count", "3", "--wait", "--json"
    )
    assert done.returncode == 0, done.stderr
    records = job_records(done.stdout)
    assert len(records) == 3
    assert {r["status"] for r in records} == {"finished"}
    assert {r["result"]["count"] for r in records} == {78498}


def test_embedded_broker_starts_once_then_is_reused(cli, tmp_path):
    port = free_port()
    data = tmp_path / "data"
    overrides = {"REDIS_URL": "", "WORKBENCH_BROKER_PORT": str(port), "WORKBENCH_DATA_DIR": str(data)}
    try:
        first = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--json", **overrides)
        assert first.returncode == 0, first.stderr
        assert "Started the embedded broker" in first.stderr
        second = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--json", **overrides)
        assert second.returncode == 0, second.stderr
        assert "Started the embedded broker" not in second.stderr
        server = redis.Redis(port=port)
        assert server.llen("rq:queue:queue_one") == 2
        config = server.config_get("*")
        assert config["bind"] == "127.0.0.1"
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["dir"] == str(data / "broker")
    finally:
        assert stop_embedded(data / "broker")


def test_unreachable_broker_is_one_sentence_and_exit_1(cli):
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = cli("producer_main.py", "--task", "sleep", REDIS_URL=url)
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    assert "redis://:****@127.0.0.1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_runs_and_make_stop_leaves_nothing_behind(env, tmp_path):
    port, dash, page = free_port(), free_port(), free_port()
    demo_env = {**env, "REDIS_URL": "", "WORKBENCH_BROKER_PORT": str(port)}
    command = [sys.executable, "-m", "workbench.console.demo"]
    flags = ["--dashboard-port", str(dash), "--page-port", str(page), "--small"]
    try:
        started = subprocess.run(
            [*command, "start", *flags], cwd=ROOT, env=demo_env, capture_output=True, text=True, timeout=120
        )
        assert started.returncode == 0, started.stderr + started.stdout
        assert "jobs ran at once on average" in started.stdout
        assert "finished" in started.stdout
        run_dir = tmp_path / "data" / "run"
        pids = [int((run_dir / f"{name}.pid").read_text()) for name in ("consumer", "dashboard")]
        broker_pid = int((tmp_path / "data" / "broker" / "valkey.pid").read_text())
        assert all(alive(pid) for pid in [*pids, broker_pid])
        workers = redis.Redis(port=port).smembers("rq:workers")
        assert len(workers) == 4
    finally:
        stopped = subprocess.run([*command, "stop"], cwd=ROOT, env=demo_env, capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not any(alive(pid) for pid in [*pids, broker_pid]), "the demo's processes to exit", 10)
    assert not (run_dir / "consumer.pid").exists() and not (run_dir / "dashboard.pid").exists()
