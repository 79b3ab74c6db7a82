"""The janitor: recovers jobs whose worker is dead, on any queue, from one consumer at a time.

RQ reclaims an abandoned job only when a live worker *on the same queue* runs its maintenance,
and only after the job's timeout plus a minute (13-16 minutes with defaults). Here a started job
is abandoned when the workbench worker running it stopped refreshing its liveness key
(`workbench.heartbeat`): its consumer was killed -9, its host died, or its link to the broker was
cut (that worker has stopped the job itself before the key could lapse: `workbench.fencing`).

Cost stays flat as the fleet grows: one consumer at a time holds the janitor's lease (renewed
while it lives, taken over within JANITOR_LEASE_INTERVALS sweeps when it dies); the others only
check the lease. The holder's sweep reads the workbench workers' liveness keys and recovers each
dead worker's jobs through that worker's own execution set. The broker-wide scan (every queue's
started registry, RQ's cleanup of entries nobody listens to, malformed records parked in
intermediate lists, RQ's worker registries) runs rarely (JANITOR_FULL_SCAN_S).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import uuid4

import redis
from redis.commands.core import Script
from rq import Queue, worker_registration
from rq.intermediate_queue import IntermediateQueue

from . import defaults, fencing, settings
from .heartbeat import WORKERS_KEY, alive_key, liveness_ttl
from .jobs import SERIALIZER, CatalogJob
from .known_queues import all_queues
from .recovery import abandon_worker, expire_executions, job_loads, locked_cleanup, quarantine
from .text import as_text

LOCK_KEY = defaults.KEY_PREFIX + "janitor:lock"
#: Renew the lease only while this consumer still holds it (a token compare-and-set).
_RENEW = Script(
    None,  # type: ignore[arg-type]  # bound to a client per call
    b"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
)


def janitor_interval() -> float:
    return settings.read(defaults.ENV_JANITOR_INTERVAL)


@dataclass
class Sweep:
    """What one pass found: dead workers, recovered jobs, quarantined job ids."""

    dead_workers: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


class Janitor:
    """Call `maybe_sweep()` often; it sweeps every `interval` seconds while this consumer holds the lease."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        spared: Callable[[], set[str]] = set,
        interval: float | None = None,
        full_scan: float | None = None,
    ) -> None:
        self.connection = connection
        self.spared = spared  # names of workers known alive by other means (the caller's own processes)
        self.interval = interval or janitor_interval()
        # Shortened sweeps (tests) shorten the broker-wide scan in proportion: once per 12 sweeps by default.
        self.full_scan = full_scan or defaults.JANITOR_FULL_SCAN_S * self.interval / defaults.JANITOR_INTERVAL_S
        self._next = 0.0
        self._next_full = 0.0
        self._trust_liveness_at = 0.0
        self._token = uuid4().hex
        self.holds_lease = False

    def note_outage(self) -> None:
        """The broker was unreachable: liveness keys lapsed for everyone, so judge none until they are fresh."""
        self._trust_liveness_at = time.monotonic() + liveness_ttl()
        self.holds_lease = False

    def _take_lease(self) -> bool:
        ttl_ms = int(self.interval * defaults.JANITOR_LEASE_INTERVALS * 1000)
        if self.holds_lease and _RENEW([LOCK_KEY], [self._token, ttl_ms], client=self.connection):
            return True
        self.holds_lease = bool(self.connection.set(LOCK_KEY, self._token, nx=True, px=ttl_ms))
        return self.holds_lease

    def maybe_sweep(self) -> Sweep | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval
        if not self._take_lease():
            return None
        judge = now >= self._trust_liveness_at
        if now >= self._next_full:
            self._next_full = now + self.full_scan
            return self.sweep(judge_liveness=judge)
        return self.sweep_dead(judge_liveness=judge)

    def sweep_dead(self, judge_liveness: bool = True) -> Sweep:
        """The frequent pass: recover each dead worker's jobs through its own execution set."""
        result = Sweep()
        if not judge_liveness:
            return result
        for name in sorted(self.dead_workers()):
            result.recovered += abandon_worker(self.connection, name, unless_alive=True)
            result.dead_workers.append(name)
        return result

    def sweep(self, judge_liveness: bool = True) -> Sweep:
        """The rare, broker-wide pass: every queue's started jobs, intermediate lists and worker registry."""
        result = Sweep()
        dead = self.dead_workers() if judge_liveness else set()
        queues = all_queues(self.connection, job_class=CatalogJob, serializer=SERIALIZER)
        for queue in queues:
            registry = queue.started_job_registry
            composites = [as_text(c) for c in self.connection.zrange(registry.key, 0, -1)]
            if dead and composites:
                with self.connection.pipeline(transaction=False) as pipe:
                    for composite in composites:
                        pipe.hget(f"rq:execution:{composite}", "worker_name")
                    owners = pipe.execute()
                for composite, owner in zip(composites, owners, strict=True):
                    if owner and as_text(owner) in dead:
                        result.recovered += expire_executions(self.connection, [composite], owner=as_text(owner))
            locked_cleanup(registry)  # RQ's own rule, for entries that expired with nobody listening
            result.quarantined += self._park_malformed(queue, set(composites))
            worker_registration.clean_worker_registry(queue)
        for name in sorted(dead):
            result.recovered += abandon_worker(self.connection, name, unless_alive=True)
        result.dead_workers = sorted(dead)
        return result

    def dead_workers(self) -> set[str]:
        """Workbench workers whose liveness key lapsed, except those the caller vouches for."""
        names = sorted(as_text(n) for n in self.connection.smembers(WORKERS_KEY))
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
            job_id = as_text(raw)
            if job_id in started_ids:
                continue
            reason = job_loads(self.connection, job_id)
            if reason:
                quarantine(self.connection, queue.name, job_id, f"malformed job record ({reason})")
                parked.append(job_id)
            elif self._stuck(queue, job_id):
                status = self.connection.hget(CatalogJob.key_for(job_id), "status")
                with self.connection.pipeline() as pipe:
                    pipe.lrem(key, 0, job_id)
                    if status in (b"queued", b"started"):
                        # Its worker died (or lost its link) between taking it and starting it, so it never
                        # ran: back to the front, queued again, and any late start of it superseded.
                        pipe.lpush(queue.key, job_id)
                        pipe.hset(CatalogJob.key_for(job_id), "status", "queued")
                        fencing.bump(pipe, job_id)
                    pipe.execute()  # an ended job's stale id is only removed
        return parked

    def _stuck(self, queue: Queue, job_id: str) -> bool:
        """RQ's rule: a job seen in the intermediate list a minute ago and still not started."""
        intermediate = queue.intermediate_queue
        return not intermediate.set_first_seen(job_id) and intermediate.should_be_cleaned_up(job_id)
