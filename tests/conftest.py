"""Shared fixtures: a private broker per session, and factories for the user's commands.

Nothing here touches a server it did not start: the system Redis on 6379 is never used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from workbench.broker import start_embedded, stop_embedded
from workbench.processes import alive

from .support import ROOT, child_pids, free_port, wait_for


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory) -> Iterator[str]:
    """A private embedded valkey for the whole session, stopped by pid at the end."""
    folder = tmp_path_factory.mktemp("broker")
    port = free_port()
    start_embedded(port, folder)
    yield f"redis://127.0.0.1:{port}/0"
    stop_embedded(folder)


@pytest.fixture
def killable_broker(tmp_path):
    """A broker of this test's own, which it may kill and restart: (port, folder, start(*extra))."""
    port, folder = free_port(), tmp_path / "own-broker"

    def start(*extra: str) -> redis.Redis:
        start_embedded(port, folder, *extra)
        return redis.Redis(port=port)

    yield port, folder, start
    stop_embedded(folder)


@pytest.fixture
def conn(broker_url) -> Iterator[redis.Redis]:
    """A connection to the private broker, emptied after each test."""
    connection = redis.Redis.from_url(broker_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def env(broker_url, tmp_path) -> dict[str, str]:
    """The environment a user's shell would have, pointed at the private broker."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "SCRAPE_"))}
    return {
        **base,
        "REDIS_URL": broker_url,
        "WORKBENCH_DATA_DIR": str(tmp_path / "data"),
        "WORKBENCH_BROKER_PORT": str(free_port()),  # never fall back to the system Redis
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }


@pytest.fixture
def cli(env):
    """Run an entry script as the user would: `cli("producer_main.py", "--task", ...)`."""

    def run(script: str, *args: str, timeout: float = 60, input: str | None = None, **overrides):
        return subprocess.run(
            [sys.executable, script, *args],
            cwd=ROOT,
            env={**env, **overrides},
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def consumer(env, conn):
    """Start `consumer_main.py` with flags in the background; stopped (warm, then by force) after."""
    started: list[subprocess.Popen] = []

    def start(
        *args: str, wait_workers: int | None = None, script: str = "consumer_main.py", **overrides
    ) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, script, *args],
            cwd=ROOT,
            env={**env, **overrides},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        if wait_workers:
            wait_for(lambda: int(conn.scard("rq:workers")) >= wait_workers, f"{wait_workers} workers registered")
        return process

    yield start
    for process in started:
        stop_process_tree(process)


def stop_process_tree(process: subprocess.Popen) -> None:
    """Warm-stop a consumer, then kill what is left of it and of its workers, by pid."""
    children = child_pids(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    for pid in children:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
