"""Recovering what dead or stuck workers leave behind, through RQ's own failure and retry paths.

- `abandon_worker`: a worker is known dead. RQ fails (or retries) a started job only once its
  registry entry expires, minutes later and only with a live worker on that queue; here the
  dead worker's entries are expired at once (the ZADD trick RQ's own tests use) and RQ's
  `StartedJobRegistry.cleanup()` does the rest. The worker is then unregistered.
- `fail_overdue`: a worker was killed for overrunning a job's timeout; the job fails with a
  timeout reason (or is re-queued when it has retries left).
- `quarantine`: a job record that cannot be loaded is parked in the failed registry with a reason,
  so that no worker trips over it again (RQ's worker exits 0 on it and leaks its id in the
  intermediate queue, which then breaks every new worker's start-up maintenance).
"""

from __future__ import annotations

import time

from redis import Redis
from redis.commands.core import Script
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from rq.intermediate_queue import IntermediateQueue
from rq.job import JobStatus
from rq.job_lifecycle import record_job_failure
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.worker import Worker
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

from . import defaults, fencing
from .heartbeat import WORKERS_KEY, alive_key
from .jobs import SERIALIZER, CatalogJob, make_queue
from .text import as_text

#: A score long in the past: the entry counts as expired for StartedJobRegistry.cleanup().
EXPIRED_SCORE = 100
#: Malformed job ids and why they were parked, for people and the dashboard.
QUARANTINE_KEY = defaults.KEY_PREFIX + "quarantine"


#: Expire one started-registry entry for recovery and supersede its run (generation +1), in one step,
#: only if the entry is still there and its worker's liveness key is absent (a worker that came back
#: between the janitor's look and this step keeps its job).
_EXPIRE_LUA = """
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
return 1
"""
_EXPIRE = Script(None, _EXPIRE_LUA.encode())  # type: ignore[arg-type]  # bound to a client per call


def abandon_worker(connection: Redis, worker_name: str, *, unless_alive: bool = False) -> list[str]:
    """Fail or re-queue the jobs a dead worker was running, unregister it; return the job ids.

    With `unless_alive`, leave a worker whose liveness key is back (the janitor's case) untouched.
    """
    composites = [as_text(c) for c in connection.smembers(WORKER_EXECUTIONS_KEY_TEMPLATE.format(worker_name))]
    composites += register_claimed(connection, worker_name, {c.split(":", 1)[0] for c in composites})
    recovered = expire_executions(connection, composites, owner=worker_name if unless_alive else None)
    if unless_alive and connection.exists(alive_key(worker_name)):
        return recovered
    unregister(connection, worker_name)
    return recovered


#: The execution id of a started-registry entry made for a run whose own start records were never written.
UNRECORDED_EXECUTION = "unrecorded"


def register_claimed(connection: Redis, worker_name: str, known: set[str]) -> list[str]:
    """Runs `worker_name` claimed whose start records it had not written yet (`workbench.lean_path`: a run's
    first moments): found in its queues' intermediate lists, each given a started-registry entry so that
    recovering them goes the way of every other run. Returns their composite ids."""
    raw = connection.hget(Worker.redis_worker_namespace_prefix + worker_name, "queues")
    found: list[str] = []
    for name in filter(None, as_text(raw or b"").split(",")):
        queue = make_queue(name, connection)
        ids = [as_text(i) for i in connection.lrange(queue.intermediate_queue_key, 0, -1)]
        candidates = [i for i in ids if i not in known]
        if not candidates:
            continue
        with connection.pipeline(transaction=False) as pipe:
            for job_id in candidates:
                pipe.hmget(CatalogJob.key_for(job_id), "status", "worker_name")
            owners = pipe.execute()
        for job_id, (status, owner) in zip(candidates, owners, strict=True):
            if status == b"started" and owner is not None and owner.decode() == worker_name:
                composite = f"{job_id}:{UNRECORDED_EXECUTION}"
                with connection.pipeline() as pipe:
                    pipe.zadd(queue.started_job_registry.key, {composite: time.time() + 60})
                    pipe.lrem(queue.intermediate_queue_key, 1, job_id)
                    pipe.execute()
                found.append(composite)
    return found


def expire_executions(connection: Redis, composites: list[str], owner: str | None = None) -> list[str]:
    """Expire these started-registry entries (superseding their runs) and let RQ's cleanup fail or retry them.

    With `owner`, an entry is left alone while that worker's liveness key exists.
    """
    recovered: list[str] = []
    registries: dict[str, StartedJobRegistry] = {}
    for composite in composites:
        job_id = composite.split(":", 1)[0]
        job_key = CatalogJob.key_for(job_id)
        origin = connection.hget(job_key, "origin")
        if not origin:
            continue
        name = as_text(origin)
        registry = registries.setdefault(name, make_queue(name, connection).started_job_registry)
        keys = [registry.key, job_key, alive_key(owner) if owner else job_key]
        args: list[str | int] = [composite, EXPIRED_SCORE, owner or "", fencing.GENERATION_FIELD]
        if _EXPIRE(keys, args, client=connection):
            recovered.append(job_id)
    for registry in registries.values():
        locked_cleanup(registry)
    return recovered


def locked_cleanup(registry: StartedJobRegistry) -> None:
    """RQ's abandoned-job cleanup under the queue's maintenance lock, which RQ's own maintenance and
    the dashboard take too: two cleaners at once could each retry the same job, and run it twice.
    Without the lock, the expired entries wait for whoever holds it, or for the next sweep."""
    queue = registry.get_queue()
    if not queue.acquire_maintenance_lock():
        return
    try:
        # RQ will fail or retry every expired entry: supersede those runs first, so a worker still
        # running one (its entry outlived by its job) cannot write its result over the recovery.
        expired = [as_text(c) for c in registry.connection.zrangebyscore(registry.key, 0, time.time())]
        if expired:
            with registry.connection.pipeline(transaction=False) as pipe:
                for job_id in {c.split(":", 1)[0] for c in expired}:
                    fencing.bump(pipe, job_id)
                pipe.execute()
        registry.cleanup()
    finally:
        queue.release_maintenance_lock()


def unregister(connection: Redis, worker_name: str) -> None:
    """Remove a dead worker from RQ's registries and the workbench's, so no ghost is listed."""
    key = Worker.redis_worker_namespace_prefix + worker_name
    queues = connection.hget(key, "queues")
    with connection.pipeline() as pipe:
        pipe.srem(REDIS_WORKER_KEYS, key)
        for queue_name in as_text(queues or b"").split(","):
            if queue_name:
                pipe.srem(WORKERS_BY_QUEUE_KEY % queue_name, key)
        pipe.hset(key, "death", time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()))
        pipe.expire(key, defaults.DEAD_WORKER_TTL_S)
        pipe.delete(WORKER_EXECUTIONS_KEY_TEMPLATE.format(worker_name), alive_key(worker_name))
        pipe.srem(WORKERS_KEY, worker_name)
        pipe.execute()


def fail_overdue(connection: Redis, job_id: str, reason: str) -> bool:
    """Fail a started job whose worker was killed past its timeout (re-queue it if retries remain)."""
    try:
        job = CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except Exception:  # noqa: BLE001 - gone or unreadable: nothing left to fail
        return False
    if job.get_status(refresh=False) != JobStatus.STARTED or not job.origin:
        return False
    queue = make_queue(job.origin, connection)
    registry = queue.started_job_registry
    composites = [c for c in registry.get_job_and_execution_ids(cleanup=False) if c[0] == job_id]
    with connection.pipeline() as pipe:
        for jid, execution_id in composites:
            pipe.zrem(registry.key, f"{jid}:{execution_id}")
        fencing.bump(pipe, job_id)
        if job.retries_left and job.retries_left > 0:
            job.retry(queue, pipe)
        else:
            record_job_failure(job, reason, pipe)
            queue.enqueue_dependents(job, refresh_job_status=False)
        pipe.execute()
    return True


def quarantine(connection: Redis, queue_name: str, job_id: str, reason: str) -> None:
    """Park an unloadable job record as failed so no worker picks it again."""
    queue_key = make_queue(queue_name, connection).key
    job_key = CatalogJob.key_for(job_id)
    failed = FailedJobRegistry(queue_name, connection=connection, serializer=SERIALIZER)
    is_hash = connection.type(job_key) == b"hash"
    with connection.pipeline() as pipe:
        pipe.lrem(IntermediateQueue.get_intermediate_queue_key(queue_key), 0, job_id)
        pipe.lrem(queue_key, 0, job_id)
        pipe.zadd(failed.key, {job_id: time.time() + defaults.FAILURE_TTL_S})
        if is_hash:
            pipe.hset(job_key, mapping={"status": JobStatus.FAILED.value, "workbench_quarantined": reason})
        pipe.hset(QUARANTINE_KEY, job_id, f"{queue_name}: {reason}")
        pipe.execute()


def job_loads(connection: Redis, job_id: str) -> str | None:
    """None if the job record loads (or is gone), else the reason it cannot."""
    try:
        CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except Exception as exc:  # noqa: BLE001 - any failure to load is what we are looking for
        if not connection.exists(CatalogJob.key_for(job_id)):
            return None
        return f"{type(exc).__name__}: {exc}".strip().rstrip(":")[: defaults.QUARANTINE_REASON_CHARS]
    return None
