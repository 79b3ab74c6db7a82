"""What the tools share: a private broker for one run, the environment its processes get, a probe."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support import free_port
from workbench.broker import start_embedded, stop_embedded

#: The repository root (the tools run from it: `python -m tools.NAME`).
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PrivateBroker:
    url: str
    env: dict[str, str]  # what the run's processes see: this broker, a data folder of its own


@contextmanager
def private_broker(prefix: str) -> Iterator[PrivateBroker]:
    """An embedded broker on a free port with its data in a temporary folder; stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    start_embedded(port, folder / "broker")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "DASHBOARD_"))}
    env.update(REDIS_URL=url, WORKBENCH_DATA_DIR=str(folder / "data"), WORKBENCH_BROKER_PORT=str(free_port()))
    try:
        yield PrivateBroker(url, env)
    finally:
        stop_embedded(folder / "broker")
        shutil.rmtree(folder, ignore_errors=True)


def answers(base: str) -> bool:
    """Whether a dashboard at `base` answers yet."""
    try:
        return requests.get(base + "/favicon.ico", timeout=1).status_code == 200
    except requests.RequestException:
        return False
