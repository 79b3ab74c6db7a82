"""What the dashboard's buttons do: stop, delete, requeue, one job or many, and stop workers.

Deleting never lies (issue 12, class 8). A job a live worker runs is stopped first, with the
semantics of `kill_thread/kill_job.py` (`workbench.control.stop_job`: the job ends "stopped",
its worker carries on), and deleted only once its worker has recorded that end; if it cannot be
stopped, it is not deleted and the answer says why. The delete itself is one transaction that
WATCHes the job and its queue, so a worker taking the job at that moment makes it run again
through the same path instead of racing it: a deleted job is never written back by a worker.
A job whose worker is gone (abandoned) has nobody left to write it, and is deleted at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import WatchError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from rq.results import Result
from rq.worker import Worker

from .. import control, defaults, stats
from ..errors import NotFound, WorkbenchError
from ..jobs import CatalogJob, make_queue
from ..known_queues import all_queues
from ..text import as_text
from .listing import REGISTRIES
from .records import load_job


@dataclass
class Outcome:
    """What one action did: ok, or the one sentence saying why not (and the HTTP status to answer)."""

    ok: bool
    sentence: str = ""
    code: int = 200
    detail: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        body = {"status": "OK" if self.ok else "ERROR", **self.detail}
        if self.sentence:
            body["error" if not self.ok else "message"] = self.sentence
        return body


def worker_gone(connection: Redis, job: CatalogJob) -> str | None:
    """Why a started job is running nowhere (its worker is gone), or None if a worker may hold it."""
    if not job.worker_name:
        return "no worker took it"
    if not connection.exists(Worker.redis_worker_namespace_prefix + job.worker_name):
        return f"its worker {job.worker_name} is gone"
    return None


# -- stop ---------------------------------------------------------------------------------


def stop_job(connection: Redis, job_id: str, wait_s: float = defaults.STOP_JOB_WAIT_S) -> Outcome:
    """Stop a running job as kill_job.py does; it ends "stopped" and its worker carries on."""
    try:
        stopped = control.stop_job(connection, job_id, wait_s)
    except NotFound as exc:
        return Outcome(False, str(exc), 404)
    except WorkbenchError as exc:
        return Outcome(False, str(exc), 409)
    if stopped.status == JobStatus.STARTED:
        return Outcome(False, f"job {job_id} did not stop within {wait_s:g} s on worker {stopped.worker}.", 409)
    return Outcome(True, detail={"job_status": stopped.status or "gone", "worker": stopped.worker})


# -- delete -------------------------------------------------------------------------------


def delete_job(connection: Redis, job_id: str, wait_s: float = defaults.STOP_JOB_WAIT_S) -> Outcome:
    """Delete a job; a running one is stopped first, or left alone with a sentence saying why."""
    deadline = time.monotonic() + wait_s + defaults.DASHBOARD_TAKING_WAIT_S
    while time.monotonic() < deadline:
        try:
            job = load_job(connection, job_id)
        except NoSuchJobError:
            if remove_strays(connection, job_id):
                return Outcome(True, f"job {job_id} had no record; its leftover list entries were removed.")
            return Outcome(False, f"no job {job_id} exists in the broker.", 404)
        except Exception:  # noqa: BLE001 - an unreadable record: no worker can run it, remove what is there
            purge_unreadable(connection, job_id)
            return Outcome(True)
        status = job.get_status(refresh=False)
        if status == JobStatus.STARTED and worker_gone(connection, job) is None:
            stopped = stop_job(connection, job_id, wait_s)
            if not stopped.ok:
                return Outcome(False, f"{stopped.sentence.rstrip('.')}; it was not deleted.", stopped.code)
            continue  # its worker recorded the stop: now delete what it wrote
        try:
            if _delete_unless_taken(connection, job):
                return Outcome(True)
        except WatchError:
            continue  # it changed while we looked (a worker took it, or it ended): look again
        time.sleep(defaults.KILL_POLL_INTERVAL_S)  # a worker is taking it right now: it starts in a moment
    return Outcome(False, f"job {job_id} kept changing state while being deleted; it was not deleted.", 409)


def _delete_unless_taken(connection: Redis, job: CatalogJob) -> bool:
    """Delete `job` in one transaction, unless a worker took it meanwhile (False: look again)."""
    queue = make_queue(job.origin, connection) if job.origin else None
    with connection.pipeline() as pipe:
        pipe.watch(job.key, *([queue.key] if queue else []))
        status = pipe.hget(job.key, "status")
        if status is None:
            return True  # gone already: someone else deleted it
        if as_text(status) == JobStatus.STARTED and worker_gone(connection, job) is None:
            return False
        if as_text(status) == JobStatus.QUEUED and queue is not None and pipe.lpos(queue.key, job.id) is None:
            return False  # popped by a worker that has not marked it started yet
        pipe.multi()
        job.delete(pipeline=pipe)
        pipe.delete(stats.ERROR_PREFIX + job.id)
        if queue is not None:
            for make in REGISTRIES.values():
                pipe.zrem(make(queue).key, job.id)  # strays a status-based removal would miss
        pipe.execute()
    return True


def record_keys(job_id: str) -> list[str]:
    """Every key that holds part of a job's record: its hash, dependency sets, results and error line."""
    key = CatalogJob.key_for(job_id)
    return [key, f"{key}:dependents", f"{key}:dependencies", Result.get_key(job_id), stats.ERROR_PREFIX + job_id]


def purge_unreadable(connection: Redis, job_id: str, queue_name: str | None = None) -> None:
    """Remove a record RQ cannot load, and its entries in its queue's lists, without loading it."""
    key = CatalogJob.key_for(job_id)
    origin = None
    if connection.type(key) == b"hash":
        raw = connection.hget(key, "origin")
        origin = as_text(raw, errors="replace") if raw else None
    names = {name for name in (queue_name, origin) if name}
    with connection.pipeline() as pipe:
        pipe.delete(
            key, f"{key}:dependents", f"{key}:dependencies", Result.get_key(job_id), stats.ERROR_PREFIX + job_id
        )
        for name in names:
            queue = make_queue(name, connection)
            pipe.lrem(queue.key, 0, job_id)
            for make in REGISTRIES.values():
                pipe.zrem(make(queue).key, job_id)
        pipe.execute()


def remove_strays(connection: Redis, job_id: str) -> int:
    """Remove list entries naming a job that has no record (shown as "missing" rows); how many went."""
    queues = all_queues(connection)
    with connection.pipeline() as pipe:
        for queue in queues:
            pipe.lrem(queue.key, 0, job_id)
            for make in REGISTRIES.values():
                pipe.zrem(make(queue).key, job_id)
            # started entries are "<job id>:<execution id>"
            started = queue.started_job_registry.key
            for member in (as_text(m, errors="replace") for m in connection.zrange(started, 0, -1)):
                if member.split(":", 1)[0] == job_id:
                    pipe.zrem(started, member)
        return sum(pipe.execute()) if queues else 0


def empty_registry(connection: Redis, queue_name: str, name: str) -> Outcome:
    """Delete every job of a queue's list; running ones are stopped first (or kept, and named)."""
    queue = make_queue(queue_name, connection)
    if name == "queued":
        queue.empty()
        return Outcome(True)
    registry = REGISTRIES[name](queue)
    ids = list(dict.fromkeys(registry.get_job_ids(cleanup=False)))
    refused: list[dict] = []
    deleted = 0
    for start in range(0, len(ids), defaults.DASHBOARD_PURGE_CHUNK):
        chunk = ids[start : start + defaults.DASHBOARD_PURGE_CHUNK]
        ended, others = _split_ended(connection, chunk)
        _purge_ended(connection, queue_name, name, ended)
        deleted += len(ended)
        for job_id, outcome in _each(lambda job_id: delete_job(connection, job_id), others):
            if outcome.ok or outcome.code == 404:
                deleted += 1
            else:
                refused.append({"id": job_id, "error": outcome.sentence})
    if refused:
        sentence = f"{len(refused)} job(s) could not be deleted; the first: {refused[0]['error']}"
        return Outcome(False, sentence, 409, {"deleted": deleted, "refused": refused})
    return Outcome(True, detail={"deleted": deleted})


def _split_ended(connection: Redis, ids: list[str]) -> tuple[list[str], list[str]]:
    """Jobs that have ended (no worker will write them again) and the rest, by their stored status."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(CatalogJob.key_for(job_id), "status")
        statuses = pipe.execute(raise_on_error=False)
    ended_states = {b"finished", b"failed", b"stopped", b"canceled"}
    ended = [job_id for job_id, s in zip(ids, statuses, strict=True) if s in ended_states]
    return ended, [job_id for job_id in ids if job_id not in set(ended)]


def _purge_ended(connection: Redis, queue_name: str, name: str, ids: list[str]) -> None:
    """Delete ended jobs in bulk: their hashes, results and dependency sets, and their registry entries."""
    if not ids:
        return
    key = REGISTRIES[name](make_queue(queue_name, connection)).key
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            job_key = CatalogJob.key_for(job_id)
            pipe.delete(
                job_key,
                f"{job_key}:dependents",
                f"{job_key}:dependencies",
                Result.get_key(job_id),
                stats.ERROR_PREFIX + job_id,
            )
        pipe.zrem(key, *ids)
        pipe.execute()


# -- requeue ------------------------------------------------------------------------------


def requeue_job(connection: Redis, job_id: str) -> Outcome:
    try:
        load_job(connection, job_id).requeue()
    except NoSuchJobError:
        return Outcome(False, f"no job {job_id} exists in the broker.", 404)
    except InvalidJobOperation as exc:
        return Outcome(False, f"job {job_id} cannot be requeued: {exc}", 409)
    except Exception:  # noqa: BLE001 - an unreadable record cannot be requeued
        return Outcome(False, f"job {job_id}'s record cannot be read, so it cannot be requeued.", 409)
    return Outcome(True)


# -- many at once -------------------------------------------------------------------------

ACTIONS = {"requeue": requeue_job, "delete": delete_job, "stop": stop_job}


def _each(action: Callable[[str], Outcome], ids: list[str]) -> list[tuple[str, Outcome]]:
    """Run `action` on each id, several at once (stops wait for their workers)."""
    if len(ids) <= 1:
        return [(job_id, action(job_id)) for job_id in ids]
    with ThreadPoolExecutor(max_workers=defaults.DASHBOARD_BULK_THREADS) as pool:
        return list(zip(ids, pool.map(action, ids), strict=True))


def bulk(connection: Redis, action: str, ids: list[str]) -> Outcome:
    """One action on many jobs; the answer lists the ones it could not do, each with its sentence."""
    run = ACTIONS[action]
    results = _each(lambda job_id: run(connection, job_id), list(dict.fromkeys(ids)))
    done = [job_id for job_id, outcome in results if outcome.ok]
    refused = [{"id": job_id, "error": outcome.sentence} for job_id, outcome in results if not outcome.ok]
    detail = {"done": done, "refused": refused}
    if refused:
        return Outcome(False, f"{len(refused)} of {len(results)} job(s) were not {_past(action)}.", 200, detail)
    return Outcome(True, detail=detail)


def _past(action: str) -> str:
    return {"requeue": "requeued", "delete": "deleted", "stop": "stopped"}[action]


# -- workers ------------------------------------------------------------------------------


def stop_worker(connection: Redis, name: str, force: bool) -> Outcome:
    """Stop one worker as `kill_workers.py --name NAME [--force]` does; answers within a few seconds."""
    try:
        [info] = control.select_workers(connection, name=name)
    except NotFound as exc:
        return Outcome(False, str(exc), 404)
    wait_s = defaults.DASHBOARD_WORKER_FORCE_WAIT_S if force else defaults.DASHBOARD_WORKER_STOP_WAIT_S
    outcome = control.stop_workers(connection, [info], force=force, grace_s=wait_s)
    if outcome.gone:
        return Outcome(True, f"worker {name} stopped.", detail={"worker_status": "stopped"})
    [target] = outcome.left
    if not force and target.commanded:
        job = (target.latest or info).current_job
        sentence = f"worker {name} stops after its current job {job}." if job else f"worker {name} is stopping."
        return Outcome(True, sentence, 202, {"worker_status": "stopping"})
    return Outcome(False, f"worker {name} did not stop: {target.why_not_gone(connection)}.", 409)
