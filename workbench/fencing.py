"""Fencing: a worker cut off from the broker stops its jobs before any other host may run them again.

Two mechanisms, one per side of a cut link:

- **The lease (in the worker).** Every successful liveness beat renews a lease that ends
  `lease` seconds after the beat was *sent*. The broker-side liveness key lives `ttl` seconds
  from the moment the broker *received* that beat, which is no earlier than its send time. So a
  worker that stops its running jobs when its lease ends, with `lease + stop_grace + margin = ttl`,
  has stopped them (or, if a job does not stop within `stop_grace`, has exited hard, which ends a
  job that runs in the worker's own process) before its key can lapse, and only a lapsed key lets
  another host's janitor recover the job. `margin` absorbs scheduling delays and clock-rate drift.
  The numbers and their reasons are in `workbench.defaults` (LIVENESS_TTL_S and the FENCE_*).

- **Run generations (in the broker).** Every run of a job has a number: the job hash field
  `workbench_generation` is HINCRBY'd in the transaction that starts the run (`claim`, which also
  refuses to start a job that is not queued any more, so a late delivery never starts a second
  run), and again by any recovery that fails or re-queues it (`bump`). A worker remembers the
  generation it started; its finishing transaction WATCHes the job hash and is refused when the
  generation moved on (`guard`), so a late result never overwrites the re-run's. The finishing
  transaction also records which run ended (`workbench_ended`): a worker that lost the broker
  around its EXEC (a failover) writes its end again once the broker is back, and the guard tells
  it whether the first write survived (`AlreadyRecorded`) or was lost (then it is written again).
  The start of a run and its end are confirmed on a replica when one is attached
  (`claim_confirmed`, `settled`): a failover then promotes a replica that has them.

Nothing here prints: the worker logs through its logger.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from . import defaults, durability, settings

#: The job hash field holding the run generation (a shared contract, see the module docstring).
GENERATION_FIELD = "workbench_generation"
#: The job hash field naming the generation whose end (success, failure, retry) was written.
ENDED_FIELD = "workbench_ended"


@dataclass(frozen=True)
class Timings:
    """The liveness and fencing numbers, all derived from the key TTL and the beat interval."""

    ttl: float  # the broker-side liveness key's TTL
    interval: float  # a beat every `interval` seconds
    lease: float  # a worker stops its jobs this long after its last successful beat was sent
    stop_grace: float  # ...and exits hard if they did not stop within this much more
    margin: float  # what is left before the key can lapse: scheduling delays, clock drift
    beat_timeout: float  # one beat gives up after this long (the next one is due anyway)
    janitor: float  # how often the janitor looks for lapsed keys

    @property
    def window(self) -> float:
        """Jobs of a worker that lost the broker are recovered by other hosts within this many seconds."""
        return self.ttl + self.janitor

    @property
    def blip(self) -> float:
        """Outages shorter than this never stop a job (the last good beat may be an interval and a timeout old)."""
        return self.lease - self.interval - self.beat_timeout


def timings(env: Mapping[str, str] = os.environ) -> Timings:
    """The timings in force: env variables override the defaults; the lease relation always holds."""
    ttl = settings.read(defaults.ENV_LIVENESS_TTL, env)
    lease = ttl * defaults.FENCE_LEASE_FRACTION
    stop_grace = ttl * defaults.FENCE_STOP_FRACTION
    # A lease must span a few beats, or one slow beat would stop jobs.
    interval = min(settings.read(defaults.ENV_HEARTBEAT_INTERVAL, env), lease / 3)
    return Timings(
        ttl=ttl,
        interval=interval,
        lease=lease,
        stop_grace=stop_grace,
        margin=ttl - lease - stop_grace,
        beat_timeout=min(defaults.BEAT_TIMEOUT_S, max(interval, lease / 2)),
        janitor=settings.read(defaults.ENV_JANITOR_INTERVAL, env),
    )


# -- run generations ------------------------------------------------------------------------
class Superseded(Exception):
    """Raised when a worker's finishing write is refused because the job's run generation moved on."""

    def __init__(self, job_id: str, mine: int, current: int | None) -> None:
        super().__init__(f"job {job_id}: run generation {mine} was superseded by {current}")
        self.job_id, self.mine, self.current = job_id, mine, current


class AlreadyRecorded(Exception):
    """Raised when a worker writes a run's end again (after losing the broker) and the first write survived."""


def _job_key(job_id: str) -> str:
    return f"rq:job:{job_id}"


#: One round trip: start the run only if the job is still queued, and number it. A claim this worker
#: made already (it lost the broker before the answer, and claims again) is answered with its number.
_CLAIM_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'started' and redis.call('HGET', KEYS[1], 'worker_name') == ARGV[2] then
  return {tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0'), 'started'}
end
if status ~= 'queued' then return {0, status or 'gone'} end
local generation = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], 'status', 'started', 'worker_name', ARGV[2])
return {generation, 'started'}
"""
_CLAIM = Script(None, _CLAIM_LUA.encode())  # type: ignore[arg-type]  # bound to a client per call


def claim(connection: redis.Redis, job_id: str, worker_name: str) -> tuple[int | None, str]:
    """Start a run: atomically check the job is still queued and HINCRBY its generation.

    Returns (generation, "started") or (None, the status that refused it: "started" when another
    worker runs it, "finished", "gone"...). RQ's own start-up writes (started registry, execution)
    follow; this transaction is the one that decides whether the run may start at all.
    """
    generation, status, _ = claim_confirmed(connection, job_id, worker_name)
    return generation, status


def claim_confirmed(
    connection: redis.Redis,
    job_id: str,
    worker_name: str,
    replicas: durability.Replicas | None = None,
    timeout_s: float = defaults.RUN_CONFIRM_TIMEOUT_S,
) -> tuple[int | None, str, int | None]:
    """`claim`, and in the same round trip WAIT for a replica when one is attached (`replicas` says).

    Returns (generation or None, status, replicas that acknowledged or None when none was asked):
    a run confirmed on a replica survives a failover, so it is never handed to a second worker.
    """
    if replicas is not None:
        replicas.refresh(connection)
    for _ in range(2):
        with connection.pipeline(transaction=False) as pipe:
            pipe.evalsha(_CLAIM.sha, 1, _job_key(job_id), GENERATION_FIELD, worker_name)
            queued = durability.add_replica_confirmation(pipe, replicas, timeout_s) if replicas is not None else []
            replies = pipe.execute(raise_on_error=False)
        if not isinstance(replies[0], NoScriptError):
            break
        connection.script_load(_CLAIM_LUA)  # first claim since the broker (re)started: load it, claim again
    if isinstance(replies[0], Exception):
        raise replies[0]
    generation, status = replies[0]
    status = status.decode(errors="replace") if isinstance(status, bytes) else str(status)
    acks = durability.read_confirmation(replies, queued, replicas) if replicas is not None else None
    return (int(generation) if generation else None), status, acks


def guard(pipeline: Pipeline, job_id: str, generation: int | None) -> None:
    """In a finishing transaction not yet executed: WATCH the job and refuse if its generation moved on.

    Raises Superseded; a change between this check and EXEC makes the broker refuse the EXEC (WatchError).
    """
    if generation is None:
        return
    key = _job_key(job_id)
    pipeline.immediate_execute_command("WATCH", key)  # redis-py now counts the pipeline as watching...
    pipeline.explicit_transaction = True  # ...so say the transaction has begun: later commands queue behind EXEC
    raw, ended = pipeline.immediate_execute_command("HMGET", key, GENERATION_FIELD, ENDED_FIELD)
    current = int(raw) if raw is not None else None
    # No generation, or a lower one: the broker lost the claim (a failover promoted a replica without it, a
    # restart lost its last second of AOF); recoveries only ever raise it, so nothing superseded this run.
    if current is not None and current > generation:
        pipeline.reset()  # UNWATCHes: the connection goes back to the pool clean
        raise Superseded(job_id, generation, current)
    if ended is not None and int(ended) == generation:
        pipeline.reset()
        raise AlreadyRecorded(f"job {job_id}: the end of run {generation} is recorded already")
    pipeline.hset(key, ENDED_FIELD, generation)  # queued: written by the finishing transaction itself


def settled(
    connection: redis.Redis,
    job_id: str,
    replicas: durability.Replicas,
    touch: tuple[str, str, str],
    timeout_s: float = defaults.RUN_CONFIRM_TIMEOUT_S,
) -> tuple[int | None, int | None, int | None]:
    """After a finishing write, one round trip: (the generation whose end is recorded, the current
    generation, replicas that acknowledged the end or None when none is attached; see `durability`)."""
    replicas.refresh(connection)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hmget(_job_key(job_id), ENDED_FIELD, GENERATION_FIELD)
        key, field, value = touch
        pipe.hset(key, field, value)  # WAIT counts this connection's writes: this one is past the end's
        queued = durability.add_replica_confirmation(pipe, replicas, timeout_s)
        replies = pipe.execute(raise_on_error=False)
    if isinstance(replies[0], Exception):
        raise replies[0]
    ended, current = (int(raw) if raw is not None else None for raw in replies[0])
    return ended, current, durability.read_confirmation(replies, queued, replicas)


def bump(pipeline: Pipeline | redis.Redis, job_id: str) -> None:
    """A recovery fails or re-queues the job: any run still going on somewhere is superseded."""
    pipeline.hincrby(_job_key(job_id), GENERATION_FIELD, 1)


def generation(connection: redis.Redis, job_id: str) -> int | None:
    raw = connection.hget(_job_key(job_id), GENERATION_FIELD)
    return int(raw) if raw is not None else None


# -- the lease --------------------------------------------------------------------------------
class Fenced(Protocol):
    """What the fence needs from a worker."""

    name: str

    def stop_running_jobs(self, reason: str) -> None: ...

    def tasks_running(self) -> bool: ...


class Fence(threading.Thread):
    """Daemon thread: when the lease runs out, stop the worker's jobs; exit hard if they do not stop.

    The heartbeat calls `renewed(sent_at)` after each successful beat, with the monotonic time
    taken just before the beat was sent.
    """

    def __init__(
        self,
        worker: Fenced,
        numbers: Timings,
        log: Callable[[str], None],
        hard_exit: Callable[[], None] = lambda: os._exit(defaults.EXIT_FENCED),
    ) -> None:
        super().__init__(name=f"fence {worker.name}", daemon=True)
        self.worker = worker
        self.numbers = numbers
        self.log = log
        self.hard_exit = hard_exit
        self._deadline = time.monotonic() + numbers.lease
        self._wake = threading.Condition()
        self._stopped = False
        #: monotonic time the lease ran out, while it stays out; None while the lease holds
        self.lapsed_at: float | None = None
        #: generations of the runs this worker started and has not finished
        self.generations: dict[str, int] = {}
        #: jobs stopped by the fence, whose outcome is written once the broker is back
        self.fenced_jobs: set[str] = set()
        self.lapses = 0

    @property
    def holds_lease(self) -> bool:
        return self.lapsed_at is None and time.monotonic() < self._deadline

    def renewed(self, sent_at: float) -> None:
        with self._wake:
            self._deadline = max(self._deadline, sent_at + self.numbers.lease)
            lapsed_at, self.lapsed_at = self.lapsed_at, None
            self._wake.notify()
        if lapsed_at is not None:
            self.log(
                f"Worker {self.worker.name}: reached the broker again, {time.monotonic() - lapsed_at:.0f} s after "
                "its lease ran out; carrying on"
            )

    def run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (self.lapsed_at is not None or time.monotonic() < self._deadline):
                    wait = self._deadline - time.monotonic() if self.lapsed_at is None else None
                    self._wake.wait(wait)
                if self._stopped:
                    return
                self.lapsed_at = time.monotonic()
                self.lapses += 1
            self._fire()

    def _fire(self) -> None:
        jobs = sorted(self.generations)
        numbers = self.numbers
        if not jobs:
            self.log(f"Worker {self.worker.name}: lost the broker for {numbers.lease:g} s (its lease); idle, waiting")
            return
        self.fenced_jobs.update(jobs)
        self.log(
            f"Worker {self.worker.name}: lost the broker for {numbers.lease:g} s (its lease); stopping job(s) "
            f"{', '.join(jobs)} so that no other host runs them at the same time"
        )
        self.worker.stop_running_jobs(f"stopped: worker {self.worker.name} lost the broker for {numbers.lease:g} s")
        deadline = time.monotonic() + numbers.stop_grace
        while self.worker.tasks_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.worker.tasks_running():
            self.log(
                f"Worker {self.worker.name}: job(s) {', '.join(jobs)} did not stop within "
                f"{numbers.stop_grace:g} s; exiting hard"
            )
            self.hard_exit()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
