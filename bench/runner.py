"""Running the experiments: a private broker, the interleaved rounds, and the machine they ran on."""

from __future__ import annotations

import compileall
import os
import platform
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import redis

from workbench.broker import client, start_embedded, stop_embedded

from .metrics import Series, metrics
from .rows import EXPERIMENTS, Context, Sizes
from .sides import ROOT, SIDES

Progress = Callable[[str], None]


@dataclass
class Run:
    """Everything a report needs: the figures, the sizes, and where they were measured."""

    sizes: Sizes
    series: list[Series]
    machine: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@contextmanager
def private_broker(folder: Path) -> Iterator[str]:
    """An embedded valkey on a free port in `folder` (never the system Redis), stopped by pid."""
    port = free_port()
    start_embedded(port, folder)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_embedded(folder)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env(url: str, data_dir: Path) -> dict[str, str]:
    """What every worker process sees: the private broker, and no way to fall back to 6379."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "RQ_"))}
    return {**base, "REDIS_URL": url, "WORKBENCH_DATA_DIR": str(data_dir), "WORKBENCH_BROKER_PORT": str(free_port())}


def run(sizes: Sizes, only: set[str] | None = None, progress: Progress = lambda line: None) -> Run:
    """Measure every experiment for both sides, `sizes.rounds` rounds, A/B order alternating per round."""
    # PYTHONDONTWRITEBYTECODE is set on these machines: without this, every forked `rq worker`
    # horse would recompile the task modules it imports (~1 ms per job against plain RQ).
    for package in ("task_def", "workbench"):
        compileall.compile_dir(ROOT / package, quiet=1)
    series = {m.key: Series(m) for m in metrics(sizes)}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        folder = Path(tmp)
        with private_broker(folder / "broker") as url:
            conn = client(url)  # as every workbench process: workbench.broker.client
            machine = describe_machine(conn)
            ctx = Context(conn, url, worker_env(url, folder / "data"), folder, sizes)
            for number in range(sizes.rounds):
                ctx.round = number
                order = SIDES if number % 2 == 0 else SIDES[::-1]
                for name, experiment in EXPERIMENTS:
                    if only and name not in only:
                        continue
                    for side in order:
                        conn.flushdb()  # our private broker; no worker of ours is running here
                        figures = experiment(ctx, side)
                        for key, value in figures.items():
                            getattr(series[key], side.key).append(value)
                        shown = ", ".join(f"{key} {value:,.3g}" for key, value in figures.items())
                        progress(f"round {number + 1}/{sizes.rounds} {name:8} {side.title:9} {shown}")
            conn.close()
    machine["load after"] = _load()
    return Run(sizes, list(series.values()), machine, time.monotonic() - started)


def describe_machine(conn: redis.Redis) -> dict[str, str]:
    server = conn.info("server")
    name = "valkey" if "valkey_version" in server else "redis"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rq": version("rq"),
        "redis-py": version("redis"),
        "server": f"{name} {server.get(f'{name}_version', '?')} (private, embedded, AOF everysec)",
        "load before": _load(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
