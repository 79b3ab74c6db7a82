"""RQ objects as the workbench uses them: JSON-serialised queues and catalog-only jobs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from . import checkpoint
from .catalog_load import load_catalog
from .errors import NotCatalogTask, UsageError
from .interrupts import WINDOWS

#: Every job, queue, worker and dashboard view uses this: nothing read from Redis is unpickled.
SERIALIZER = JSONSerializer


class UnreadableRecord(Exception):
    """Raised when a job record in the broker cannot be loaded: malformed, not JSON, or too large."""


class RecordTooLarge(UnreadableRecord):
    """Raised when a job record's data, error text or result would inflate past defaults.MAX_INFLATED_BYTES."""


#: Set while a task function runs in this process: the only window in which a stop may interrupt it.
#: (The one-job worker's; a worker running several jobs at once uses `interrupts.WINDOWS`, per job.)
TASK_RUNNING = threading.Event()


class CatalogJob(Job):
    """A job that runs only catalog tasks, with parameters re-validated against the catalog.

    Stock RQ imports whatever dotted path a job names, for its function and for its callbacks.
    Here neither is imported unless the catalog names it: a job from any other route that names
    something else fails with "not a catalog task on this worker" before any of its code is loaded.

    A resumable task (`@task(resumable=True)`) runs inside its job's checkpoint context
    (`workbench.checkpoint`): it is handed the checkpoint read with the job, and its writes are
    fenced by the run generation the worker claimed; a finished job keeps no checkpoint.
    """

    #: The run generation the worker claimed for this run (`workbench.fencing.claim`); fences checkpoint writes.
    run_generation: int | None = None
    #: The checkpoint document read with the job (its hash's `workbench_checkpoint` field), if any.
    stored_checkpoint: bytes | None = None

    def restore(self, raw_data) -> Any:
        super().restore(raw_data)
        self.stored_checkpoint = checkpoint.stored(raw_data)

    def _execute(self) -> Any:
        spec = catalog_spec(self.func_name)
        if spec is None:
            raise _refusal(f"not a catalog task on this worker: {self.func_name}")
        for name in self._callback_names():
            if not catalog_callback(name):
                raise _refusal(f"not a catalog task on this worker: callback {name}")
        if self.args:
            raise _refusal(f"catalog task {spec.name} takes named parameters only")
        try:
            kwargs = spec.validate(self.kwargs or {})
        except UsageError as exc:
            raise _refusal(f"refused parameters for {spec.name}: {exc}") from None
        TASK_RUNNING.set()
        try:
            WINDOWS.enter(self.id)  # a threaded worker stops or times out this task only inside its window
            if not spec.resumable:
                return spec.func(**kwargs)
            with checkpoint.running(self, self.stored_checkpoint, self.run_generation):
                return spec.func(**kwargs)
        finally:
            WINDOWS.leave(self.id)
            TASK_RUNNING.clear()

    def _handle_success(self, result_ttl, pipeline, *args: Any, **kwargs: Any) -> None:
        """RQ's success bookkeeping, inside the finishing transaction; a finished job keeps no checkpoint."""
        spec = catalog_spec(self.func_name)
        if self.stored_checkpoint is not None or (spec is not None and spec.resumable):
            checkpoint.drop(pipeline, self.key)  # (other jobs have none: not one command more for them)
        super()._handle_success(result_ttl, pipeline, *args, **kwargs)

    def retry(self, queue: Queue, pipeline: Any) -> None:
        """RQ's retry, with a back-off's status change inside the finishing transaction.

        RQ writes the SCHEDULED status straight to the broker, outside `pipeline`; the worker's
        finishing transaction WATCHes the job (run generations, `workbench.fencing`), so that
        stray write made every retry with a back-off refuse its own failure.
        """
        interval = self.get_retry_interval()
        if not interval:
            super().retry(queue, pipeline)
            return
        assert self.retries_left
        self.retries_left -= 1
        self.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
        queue.schedule_job(self, now() + timedelta(seconds=interval), pipeline=pipeline)

    @property
    def func(self) -> Any:
        """The catalog function; never an import of a path outside the catalog."""
        spec = catalog_spec(self.func_name)
        if spec is None:
            raise _refusal(f"not a catalog task on this worker: {self.func_name}")
        return spec.func

    def _callback_names(self) -> list[str]:
        names = (self._success_callback_name, self._failure_callback_name, self._stopped_callback_name)
        return [name for name in names if name]

    # RQ imports callbacks by name when the job ends; outside the catalog's list they are not loaded.
    @property
    def success_callback(self) -> Any:
        return super().success_callback if catalog_callback(self._success_callback_name) else None

    @property
    def failure_callback(self) -> Any:
        return super().failure_callback if catalog_callback(self._failure_callback_name) else None

    @property
    def stopped_callback(self) -> Any:
        return super().stopped_callback if catalog_callback(self._stopped_callback_name) else None


def _refusal(sentence: str) -> NotCatalogTask:
    """The error of a refused job; the note makes the sentence the last line of RQ's stored traceback."""
    error = NotCatalogTask(sentence)
    error.add_note(sentence)
    return error


def catalog_callback(name: str | None) -> bool:
    """Whether a callback path is one this process's catalog allows."""
    return bool(name) and name in load_catalog().callbacks


def catalog_spec(func_name: str | None):
    """The catalog entry for a job's dotted function path, or None."""
    return load_catalog().spec_for_path(func_name)


def make_queue(name: str, connection: Redis) -> Queue:
    """A queue that stores JSON and hands out CatalogJobs."""
    return Queue(name, connection=connection, serializer=SERIALIZER, job_class=CatalogJob)


def fetch_job(job_id: str, connection: Redis) -> CatalogJob:
    return CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
