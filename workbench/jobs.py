"""RQ objects as the workbench uses them: JSON-serialised queues and catalog-only jobs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from . import capped, checkpoint
from .capped import RecordTooLarge as RecordTooLarge  # re-exported: readers catch them from here
from .capped import UnreadableRecord as UnreadableRecord
from .catalog import TaskSpec
from .catalog_load import load_catalog
from .errors import NotCatalogTask, UsageError
from .interrupts import WINDOWS

#: Every job, queue, worker and dashboard view uses this: nothing read from Redis is unpickled.
SERIALIZER = JSONSerializer

#: The job hash fields a job is read with: those RQ 3 writes for the jobs the workbench enqueues
#: (the workbench's own `workbench_*` fields are read by their modules). Everything else in a
#: record is ignored: `webhooks` (RQ would send HTTP requests with chosen headers to any address),
#: rate limits, repeats, and whatever a later RQ adds that makes a worker contact or run something.
#: Callback names are kept only to be refused unless the catalog lists them (`catalog_callback`).
RECORD_FIELDS = frozenset(
    {
        "data", "created_at", "origin", "worker_name", "description", "enqueued_at", "started_at", "ended_at",
        "last_heartbeat", "group_id", "result", "timeout", "result_ttl", "failure_ttl", "status",
        "success_callback_name", "success_callback_timeout", "failure_callback_name", "failure_callback_timeout",
        "stopped_callback_name", "stopped_callback_timeout", "dependency_ids", "dependency_id",
        "allow_dependency_failures", "enqueue_at_front", "ttl", "meta", "number_of_retries", "retries_left",
        "retry_intervals", "enqueue_at_front_on_retry", "exc_info",
    }
)  # fmt: skip
_RECORD_KEYS = RECORD_FIELDS | {name.encode() for name in RECORD_FIELDS}


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
    #: Set when this run wrote a checkpoint (`workbench.checkpoint.running`).
    checkpoint_written: bool = False
    #: Set when the take script read and claimed this run already (`workbench.lean_path`).
    workbench_taken: bool = False

    def restore(self, raw_data: dict[Any, Any]) -> Any:
        """RQ's restore of the allow-listed fields only (`RECORD_FIELDS`), compressed ones inflated under the cap."""
        for name in (b"data", b"exc_info", "data", "exc_info"):
            capped.check(raw_data.get(name))  # RecordTooLarge before RQ inflates without a limit
        super().restore({key: value for key, value in raw_data.items() if key in _RECORD_KEYS})
        self.webhooks = []
        self.stored_checkpoint = checkpoint.stored(raw_data)

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        """Never: the workbench sends no webhooks, whatever a record says (RQ would fetch any URL)."""

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

    def _handle_success(self, result_ttl: int | None, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        """RQ's success bookkeeping, inside the finishing transaction; a finished job keeps no checkpoint."""
        if self.stored_checkpoint is not None or self.checkpoint_written:
            checkpoint.drop(pipeline, self.key)  # (a job that read none and wrote none has none to drop)
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


def catalog_spec(func_name: str | None) -> TaskSpec | None:
    """The catalog entry for a job's dotted function path, or None."""
    return load_catalog().spec_for_path(func_name)


def make_queue(name: str, connection: Redis) -> Queue:
    """A queue that stores JSON and hands out CatalogJobs."""
    return Queue(name, connection=connection, serializer=SERIALIZER, job_class=CatalogJob)


def fetch_job(job_id: str, connection: Redis) -> CatalogJob:
    # RQ's classmethod builds `cls(...)`, a CatalogJob here, but is typed as returning a Job.
    return cast(CatalogJob, CatalogJob.fetch(job_id, connection=connection, serializer=SERIALIZER))
