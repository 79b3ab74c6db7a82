"""The two sides of every comparison: the workbench ("ours") and plain RQ, each used as its users would.

Ours enqueues through `workbench.producer.enqueue` and runs workers with `consumer_main.py` (the
Supervisor forking WorkbenchWorkers). Plain RQ enqueues with `Queue.enqueue` / `Queue.enqueue_many`
and runs `rq worker` processes (fork per job), with the JSON serializer so both sides store the
same payload. Both run the same catalog function from `task_def`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from workbench.catalog import TaskSpec
from workbench.processes import alive
from workbench.producer import Batch, enqueue

ROOT = Path(__file__).resolve().parent.parent
SLEEP = "task_def.sleep.sleep"
COUNT_PRIMES = "task_def.primes.count_primes"
OURS, PLAIN = "ours", "plain"
#: Generous bounds: on a busy 2-core machine a pool of 10 can take seconds to come up or drain.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A measurement could not be made (a worker died, a job failed); one sentence."""


@dataclass
class Workers:
    """The worker processes one side started for one measurement; stopped by pid, never by name."""

    side: str
    processes: list[subprocess.Popen]
    log: Path
    started_at: float
    known: dict[int, psutil.Process] = field(default_factory=dict)

    def tree(self) -> list[psutil.Process]:
        """Every live process this side started, with its descendants (the consumer's workers)."""
        found = []
        for process in self.processes:
            try:
                root = psutil.Process(process.pid)
                found.extend([root, *root.children(recursive=True)])
            except psutil.Error:
                continue
        self.known.update((p.pid, p) for p in found)
        return found

    def pss_bytes(self) -> int:
        """Proportional set size summed over the whole tree (supervisor included for ours)."""
        total = 0
        for process in self.tree():
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                continue
        return total

    def interrupt(self) -> None:
        """Warm stop, as a person would ask: SIGINT to each process this side started."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    def wait_exited(self, pids: list[int], timeout_s: float = STOP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while any(alive(pid) for pid in pids):
            for process in self.processes:
                process.poll()  # reap our own children so they do not linger as zombies
            if time.monotonic() > deadline:
                raise BenchError(f"{self.side} workers did not exit within {timeout_s:.0f} s; see {self.log}.")
            time.sleep(0.002)

    def wait_finished(self, timeout_s: float) -> None:
        """Wait for burst workers to exit by themselves, and check they exited cleanly."""
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            try:
                code = process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                raise BenchError(f"{self.side} burst workers ran over {timeout_s:.0f} s; see {self.log}.") from None
            if code != 0:
                raise BenchError(f"a {self.side} worker exited with status {code}; see {self.log}.")

    def close(self) -> None:
        """Make sure nothing this side started survives: warm stop, then SIGKILL by pid."""
        self.tree()
        self.interrupt()
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        for pid, process in self.known.items():
            if alive(pid):
                try:
                    process.kill()  # psutil refuses if the pid now belongs to someone else
                except psutil.Error:
                    pass
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)


@dataclass(frozen=True)
class Side:
    """How one side enqueues and runs workers."""

    key: str
    title: str

    def batch(self, conn: Redis, queue: str, func_path: str, kwargs_list: list[dict[str, Any]]) -> list[str]:
        """Enqueue several jobs in pipelined batches, each side with its own batch API."""
        if self.key == OURS:
            ids: list[str] = []
            for kwargs, count in _runs(kwargs_list):
                spec = _spec(func_path)
                ids += [job.id for job in enqueue(conn, Batch(spec, spec.validate(kwargs), queue=queue, count=count))]
            return ids
        plain = plain_queue(queue, conn)
        data = [Queue.prepare_data(func_path, kwargs=kwargs) for kwargs in kwargs_list]
        with conn.pipeline() as pipe:
            jobs = plain.enqueue_many(data, pipeline=pipe)
            pipe.execute()
        return [job.id for job in jobs]

    def start(
        self, url: str, queue: str, count: int, logdir: Path, env: Mapping[str, str], burst: bool, threads: int = 1
    ) -> Workers:
        """Start `count` workers on `queue` as separate processes, output to a log file (ours: `threads` jobs each)."""
        log = logdir / f"{queue}.log"
        burst_flag = ["--burst"] if burst else []
        if self.key == OURS:
            pool = ["--workers", str(count), "--threads", str(threads), "--queue", queue]
            commands = [[sys.executable, "consumer_main.py", *pool, *burst_flag]]
        else:
            serializer = f"{JSONSerializer.__module__}.{JSONSerializer.__qualname__}"
            preload = ["-c", "bench.preload"]  # the catalog imported once per worker, not once per job
            worker = [sys.executable, "-m", "rq.cli", "worker", "--url", url, "--serializer", serializer, *preload]
            commands = [[*worker, *burst_flag, queue] for _ in range(count)]
        started = time.monotonic()
        processes = []
        with open(log, "ab") as output:
            for command in commands:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=dict(env),
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        return Workers(self.key, processes, log, started)


SIDES = (Side(OURS, "ours"), Side(PLAIN, "plain RQ"))


def plain_queue(name: str, conn: Redis) -> Queue:
    """A stock RQ queue storing JSON, with RQ's default Job class."""
    return Queue(name, connection=conn, serializer=JSONSerializer)


def wait_registered(conn: Redis, queue: str, count: int, workers: Workers) -> float:
    """Seconds from starting the processes until `count` workers are registered on `queue`."""
    deadline = time.monotonic() + START_TIMEOUT_S
    probe = Queue(queue, connection=conn)
    while Worker.count(connection=conn, queue=probe) < count:
        if any(p.poll() is not None for p in workers.processes):
            raise BenchError(f"a {workers.side} worker process exited while starting; see {workers.log}.")
        if time.monotonic() > deadline:
            raise BenchError(f"{workers.side} workers did not register within {START_TIMEOUT_S:.0f} s.")
        time.sleep(0.002)
    return time.monotonic() - workers.started_at


def _spec(func_path: str) -> TaskSpec:
    from workbench.catalog_load import load_catalog

    return load_catalog().by_path[func_path]


def _runs(kwargs_list: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Group consecutive identical parameter sets, so ours enqueues each group as one Batch."""
    runs: list[tuple[dict[str, Any], int]] = []
    for kwargs in kwargs_list:
        if runs and runs[-1][0] == kwargs:
            runs[-1] = (kwargs, runs[-1][1] + 1)
        else:
            runs.append((kwargs, 1))
    return runs
