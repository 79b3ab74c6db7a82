"""Recovering jobs that a dead worker left "started", through RQ's own abandoned-job cleanup.

RQ fails (or retries) a started job only once its registry entry expires, which takes minutes
and needs a live worker on the same queue. When we know the worker is dead, we expire its
entries at once (the same ZADD trick RQ's own tests use) and let RQ's cleanup do the rest.
"""

from __future__ import annotations

from redis import Redis
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from .jobs import SERIALIZER, CatalogJob, make_queue

#: A score long in the past: the entry counts as expired for StartedJobRegistry.cleanup().
EXPIRED_SCORE = 100


def abandon_worker(connection: Redis, worker_name: str) -> list[str]:
    """Fail or re-queue the jobs a dead worker was running, unregister it; return the job ids."""
    key = Worker.redis_worker_namespace_prefix + worker_name
    composite_keys = [k.decode() for k in connection.smembers(f"{key}:executions")]
    recovered: list[str] = []
    registries: dict[str, StartedJobRegistry] = {}
    for composite in composite_keys:
        job_id = composite.split(":", 1)[0]
        if not connection.exists(CatalogJob.key_for(job_id)):
            continue
        job = CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
        if not job.origin:
            continue
        registry = registries.setdefault(job.origin, make_queue(job.origin, connection).started_job_registry)
        if connection.zscore(registry.key, composite) is not None:
            connection.zadd(registry.key, {composite: EXPIRED_SCORE}, xx=True)
            recovered.append(job_id)
    for registry in registries.values():
        registry.cleanup()
    _unregister(connection, worker_name)
    return recovered


def _unregister(connection: Redis, worker_name: str) -> None:
    """Remove a dead worker from RQ's registries so it is not shown as alive."""
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + worker_name, connection=connection, serializer=SERIALIZER
    )
    if worker is not None:
        worker.register_death()
