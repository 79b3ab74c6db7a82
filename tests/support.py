"""Small helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Without these, chromium's background connections hang on this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """Every descendant of `pid`, so a test can stop exactly what it started."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill_broker(folder: Path) -> None:
    """kill -9 the embedded broker whose pidfile is in `folder`, and wait until it is gone."""
    from workbench.processes import alive

    pid = int((folder / "valkey.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), "the broker to die")


def wait_for(predicate, what: str, timeout: float = 20.0, interval: float = 0.05, *, fail: bool = True):
    """Poll `predicate` until it is truthy; fail the test naming `what` otherwise (or return None: `fail=False`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    if not fail:
        return None
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Gadget:
    """A pickle payload: unpickling it creates the folder `marker`, the proof that something unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def job_records(stdout: str) -> list[dict]:
    """The per-job objects of `producer_main.py --json` (its first line describes the batch)."""
    import json

    return [record for record in map(json.loads, stdout.splitlines()) if "id" in record]


def batch_record(stdout: str) -> dict:
    """The batch object `producer_main.py --json` prints first."""
    import json

    first = json.loads(stdout.splitlines()[0])
    assert set(first) >= {"batch", "task", "queue", "count"}, first
    return first
