"""The janitor every consumer runs: recovers jobs whose worker is dead, on every queue.

RQ reclaims an abandoned job only when a live worker *on the same queue* runs its maintenance,
and only after the job's timeout plus a minute (13-16 minutes with defaults). Here any consumer
scans all queues every few seconds and judges a started job abandoned when the workbench worker
running it stopped refreshing its liveness key (`workbench.heartbeat`), e.g. because its whole
consumer was killed -9. It also lets RQ clean started registries nobody listens to any more,
parks unloadable job records found in intermediate queues, and unregisters dead workers.

One pass runs at a time across all consumers (a short lock), so two janitors never race.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import uuid4

import redis
from rq import Queue, worker_registration
from rq.intermediate_queue import IntermediateQueue

from . import defaults
from .heartbeat import WORKERS_KEY, alive_key, liveness_ttl, setting
from .jobs import SERIALIZER, CatalogJob
from .recovery import expire_executions, job_loads, locked_cleanup, quarantine, unregister

LOCK_KEY = defaults.KEY_PREFIX + "janitor:lock"


def janitor_interval() -> float:
    return setting(defaults.ENV_JANITOR_INTERVAL, defaults.JANITOR_INTERVAL_S)


@dataclass
class Sweep:
    """What one pass found: dead workers, recovered jobs, quarantined job ids."""

    dead_workers: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


class Janitor:
    """Call `maybe_sweep()` often; it sweeps every `interval` seconds."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        spared: Callable[[], set[str]] = set,
        interval: float | None = None,
    ) -> None:
        self.connection = connection
        self.spared = spared  # names of workers known alive by other means (the caller's own processes)
        self.interval = interval or janitor_interval()
        self._next = 0.0
        self._trust_liveness_at = 0.0
        self._token = uuid4().hex

    def note_outage(self) -> None:
        """The broker was unreachable: liveness keys lapsed for everyone, so judge none until they are fresh."""
        self._trust_liveness_at = time.monotonic() + liveness_ttl()

    def maybe_sweep(self) -> Sweep | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval
        if not self.connection.set(LOCK_KEY, self._token, nx=True, px=int(self.interval * 900)):
            return None
        return self.sweep(judge_liveness=now >= self._trust_liveness_at)

    def sweep(self, judge_liveness: bool = True) -> Sweep:
        result = Sweep()
        dead = self.dead_workers() if judge_liveness else set()
        queues = Queue.all(connection=self.connection, job_class=CatalogJob, serializer=SERIALIZER)
        for queue in queues:
            registry = queue.started_job_registry
            composites = [c.decode() for c in self.connection.zrange(registry.key, 0, -1)]
            if dead and composites:
                with self.connection.pipeline(transaction=False) as pipe:
                    for composite in composites:
                        pipe.hget(f"rq:execution:{composite}", "worker_name")
                    owners = pipe.execute()
                abandoned = [c for c, owner in zip(composites, owners, strict=True) if owner and owner.decode() in dead]
                result.recovered += expire_executions(self.connection, abandoned)
            locked_cleanup(registry)  # RQ's own rule, for entries that expired with nobody listening
            result.quarantined += self._park_malformed(queue, set(composites))
            worker_registration.clean_worker_registry(queue)
        for name in sorted(dead):
            unregister(self.connection, name)
        result.dead_workers = sorted(dead)
        return result

    def dead_workers(self) -> set[str]:
        """Workbench workers whose liveness key lapsed, except those the caller vouches for."""
        names = sorted(n.decode() for n in self.connection.smembers(WORKERS_KEY))
        if not names:
            return set()
        with self.connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(alive_key(name))
            alive = pipe.execute()
        spared = self.spared()
        return {name for name, present in zip(names, alive, strict=True) if not present and name not in spared}

    def _park_malformed(self, queue: Queue, started: set[str]) -> list[str]:
        """Quarantine unloadable records a worker left in the queue's intermediate list."""
        parked = []
        key = IntermediateQueue.get_intermediate_queue_key(queue.key)
        started_ids = {c.split(":", 1)[0] for c in started}
        for raw in self.connection.lrange(key, 0, -1):
            job_id = raw.decode()
            if job_id in started_ids:
                continue
            reason = job_loads(self.connection, job_id)
            if reason:
                quarantine(self.connection, queue.name, job_id, f"malformed job record ({reason})")
                parked.append(job_id)
            elif self._stuck(queue, job_id):
                # Its worker died between taking it and starting it; it never ran: back to the front.
                with self.connection.pipeline() as pipe:
                    pipe.lrem(key, 0, job_id)
                    pipe.lpush(queue.key, job_id)
                    pipe.execute()
        return parked

    def _stuck(self, queue: Queue, job_id: str) -> bool:
        """RQ's rule: a job seen in the intermediate list a minute ago and still not started."""
        intermediate = queue.intermediate_queue
        return not intermediate.set_first_seen(job_id) and intermediate.should_be_cleaned_up(job_id)
