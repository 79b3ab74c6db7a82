"""A worker's liveness signal: a short-lived key refreshed by a thread, even while a long job runs.

RQ's SimpleWorker heartbeats only between jobs, and RQ's own "abandoned job" rule waits for the
job timeout plus a minute and for a live worker on the same queue. Here every workbench worker
keeps `workbench:alive:<name>` (TTL a few beats) and sits in the `workbench:workers` set; when the
key lapses the worker is dead, whoever ran it, and any consumer's janitor can recover its jobs.

The key's value also says which job the worker runs and when that job's timeout is due, so the
supervisor can kill a worker stuck past it (see `workbench.pool`), and how much CPU (percent of one
core since the last beat) and memory (resident bytes) the worker process uses, measured by the
worker itself so the dashboard can show workers on any host. The same beat re-registers the
worker in RQ when the broker lost it (an outage without persistence) or a janitor declared it dead
(its link was cut longer than the TTL), so no "ghost" worker runs while missing from `Worker.all()`.
Each successful beat also renews the worker's fencing lease (`workbench.fencing`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from rq import worker_registration

from . import defaults
from .fencing import Fence, timings

if TYPE_CHECKING:
    from .worker import WorkbenchWorker

__all__ = ["Heartbeat", "alive_key", "heartbeat_interval", "liveness_ttl", "parse_alive", "wait_for_broker"]

#: Key prefixes of the workbench's own supervision records.
ALIVE_PREFIX = defaults.KEY_PREFIX + "alive:"
WORKERS_KEY = defaults.KEY_PREFIX + "workers"


def heartbeat_interval() -> float:
    return timings().interval


def liveness_ttl() -> float:
    return timings().ttl


def alive_key(worker_name: str) -> str:
    return ALIVE_PREFIX + worker_name


def parse_alive(raw: bytes | str | None) -> dict | None:
    """The decoded liveness value ({"pid", "job", "deadline", "ttl"}), or None when absent or unreadable."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Heartbeat(threading.Thread):
    """Daemon thread in a worker process: beats every `interval` s until `stop()`, and keeps the lease.

    Beats go through their own connection (`connection`, with a short socket timeout) so that a
    cut link never holds the thread longer than one beat timeout; each successful beat renews the
    worker's fencing lease (`workbench.fencing.Fence`), which stops the worker's jobs when it runs out.
    """

    def __init__(
        self,
        worker: WorkbenchWorker,
        interval: float | None = None,
        ttl: float | None = None,
        *,
        connection: redis.Redis | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name=f"heartbeat {worker.name}", daemon=True)
        numbers = timings()
        self.worker = worker
        self.connection = connection or worker.connection
        self.interval = interval or numbers.interval
        self.ttl_ms = int((ttl or numbers.ttl) * 1000)
        #: (job id, unix deadline or None) per thread running a job (see `job`).
        self._jobs: dict[int, tuple[str, float | None]] = {}
        self._stopped = threading.Event()
        self.reregistered = 0
        self.fence = Fence(worker, numbers, log or worker.log.warning)
        self._cpu_mark = (time.monotonic(), _cpu_seconds())

    @property
    def job(self) -> tuple[str, float | None] | None:
        """The running job whose timeout is due first, as (job id, unix deadline or None); None when idle."""
        jobs = list(self._jobs.values())
        return min(jobs, key=lambda job: job[1] if job[1] is not None else float("inf")) if jobs else None

    @job.setter
    def job(self, value: tuple[str, float | None] | None) -> None:
        """Set by the thread that runs the job (a worker may run several at once, one per thread)."""
        if value is None:
            self._jobs.pop(threading.get_ident(), None)
        else:
            self._jobs[threading.get_ident()] = value

    def jobs(self) -> list[str]:
        """Every job this worker runs now."""
        return [job_id for job_id, _ in list(self._jobs.values())]

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.beat()
            except redis.RedisError:
                pass  # the broker is away: the fence counts down; try again next beat

    def beat(self) -> None:
        """One round trip: refresh the liveness key, renew the lease, check RQ still knows this worker."""
        worker = self.worker
        job = self.job
        value = json.dumps(
            {
                "pid": os.getpid(),
                "job": job[0] if job else None,
                "deadline": job[1] if job else None,
                "ttl": self.ttl_ms,
                "cpu": self._cpu_percent(),
                "rss": rss_bytes(),
            }
        )
        sent_at = time.monotonic()
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.set(alive_key(worker.name), value, px=self.ttl_ms)
            pipe.hmget(worker.key, "birth", "death")
            # RQ's Worker.find_by_key (the live views) can drop a starting worker from the set (EXISTS, then SREM).
            pipe.sismember(worker_registration.REDIS_WORKER_KEYS, worker.key)
            _, (born, dead), listed = pipe.execute()
        self.fence.renewed(sent_at)
        if (not born or dead or not listed) and not self._stopped.is_set():
            self._reregister()

    def _cpu_percent(self) -> float | None:
        """CPU used by this process since the previous beat, in percent of one core."""
        then, used = self._cpu_mark
        now, cpu = time.monotonic(), _cpu_seconds()
        self._cpu_mark = (now, cpu)
        return round(100 * (cpu - used) / (now - then), 1) if now - then > 0.05 else None

    def _reregister(self) -> None:
        """The broker forgot this worker (restarted without its data), or a janitor declared it dead
        while its link was cut: put it back as it was."""
        worker = self.worker
        with self.connection.pipeline() as pipe:
            pipe.delete(worker.key)
            pipe.hset(worker.key, mapping=worker.serialize())
            worker_registration.register(worker, pipe)
            pipe.expire(worker.key, worker.worker_ttl + 60)
            pipe.sadd(WORKERS_KEY, worker.name)
            pipe.execute()
        self.reregistered += 1
        worker.log.warning(
            "Worker %s: the broker no longer listed this worker (it restarted without its data, or this worker "
            "was declared dead while it could not reach it); registered again",
            worker.name,
        )

    def start(self) -> None:
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.sadd(WORKERS_KEY, self.worker.name)
                pipe.execute()
            self.beat()  # visible at once, not one interval later
        except redis.RedisError:
            pass  # the first scheduled beat tries again; the lease counts from construction
        self.fence.start()
        super().start()

    def stop(self) -> None:
        """Stop beating and withdraw the liveness records (a clean exit leaves nothing to recover)."""
        self._stopped.set()
        self.fence.stop()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.interval + 1)
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.delete(alive_key(self.worker.name))
                pipe.srem(WORKERS_KEY, self.worker.name)
                pipe.execute()
        except redis.RedisError:
            pass  # the janitor removes the records once the key lapses


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def rss_bytes() -> int | None:
    """This process's resident memory, where the system tells it cheaply (Linux /proc), else None."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def wait_for_broker(connection: redis.Redis, still_wanted: Callable[[], bool], pause: float = 0.5) -> bool:
    """Block until the broker answers PING (True) or `still_wanted()` turns False (False)."""
    while still_wanted():
        try:
            connection.ping()
            return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            time.sleep(pause)
    return False
