"""RQ objects as the workbench uses them: JSON-serialised queues and catalog-only jobs."""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from .errors import NotCatalogTask, UsageError

#: Every job, queue, worker and dashboard view uses this: nothing read from Redis is unpickled.
SERIALIZER = JSONSerializer


#: Set while a task function runs in this process: the only window in which a stop may interrupt it.
TASK_RUNNING = threading.Event()


class CatalogJob(Job):
    """A job that runs only catalog tasks, with parameters re-validated against the catalog."""

    def _execute(self) -> Any:
        spec = catalog_spec(self.func_name)
        if spec is None:
            raise NotCatalogTask(f"not a catalog task: {self.func_name}")
        if self.args:
            raise NotCatalogTask(f"catalog task {spec.name} takes named parameters only")
        try:
            kwargs = spec.validate(self.kwargs or {})
        except UsageError as exc:
            raise NotCatalogTask(f"refused parameters for {spec.name}: {exc}") from None
        TASK_RUNNING.set()
        try:
            return spec.func(**kwargs)
        finally:
            TASK_RUNNING.clear()


def catalog_spec(func_name: str | None):
    """The catalog entry for a job's dotted function path, or None."""
    from task_def import ALLOWED_FUNCS

    return ALLOWED_FUNCS.get(func_name or "")


def make_queue(name: str, connection: Redis) -> Queue:
    """A queue that stores JSON and hands out CatalogJobs."""
    return Queue(name, connection=connection, serializer=SERIALIZER, job_class=CatalogJob)


def fetch_job(job_id: str, connection: Redis) -> CatalogJob:
    return CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
