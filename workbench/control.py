"""Listing and stopping workers and jobs anywhere on the broker, through RQ's own commands.

Every RQ worker listens on its own pubsub channel. `send_shutdown_command` makes it stop after
its current job (warm), `send_kill_horse_command` stops the job it is running, and
`send_stop_job_command` stops one job wherever it runs. The commands travel through the broker,
so they reach workers on any machine, plain `rq worker` processes included. A force stop is
shutdown first, then kill-horse: the job ends at once (failed "stopped by user", or re-queued
when it has retries left) and the worker, already told to stop, exits instead of taking the next
job. The work horse, if the worker forks one, is killed by the worker itself: nothing is orphaned.

Nothing here prints; the console layer (`workbench.console.control`) does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import redis
from redis import Redis
from rq.command import (
    PUBSUB_CHANNEL_TEMPLATE,
    send_kill_horse_command,
    send_shutdown_command,
    send_stop_job_command,
)
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus
from rq.worker import BaseWorker, Worker, WorkerStatus
from rq.worker_registration import REDIS_WORKER_KEYS

from . import defaults
from .errors import NotFound, WorkbenchError
from .heartbeat import WORKERS_KEY, alive_key, parse_alive
from .jobs import SERIALIZER, CatalogJob, UnreadableRecord, fetch_job
from .known_workers import worker_keys


@dataclass(frozen=True)
class WorkerInfo:
    """What the broker knows about one registered worker."""

    name: str
    hostname: str
    address: str  # the worker's IP address as the broker saw its connection ("?" if unknown)
    pid: int | None
    queues: tuple[str, ...]
    state: str
    current_job: str | None
    done: int
    failed: int
    last_heartbeat: datetime | None
    stopping: bool  # a warm stop was requested and the worker is finishing its job
    #: True/False from the workbench's liveness key (a workbench worker), or from RQ's heartbeat (a plain one)
    alive: bool = True
    #: seconds since the last liveness beat (workbench workers; None for plain RQ workers or a lapsed key)
    beat_age: float | None = None
    workbench: bool = False  # a workbench worker (keeps a liveness key), not a plain `rq worker`
    #: Why its record cannot be read (a forged or garbled hash), or None: then only its name is known.
    unreadable: str | None = None
    #: every job it runs now, one RQ execution each (a worker with --threads runs several at once)
    current_jobs: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "unreadable": self.unreadable,
            "hostname": self.hostname,
            "address": self.address,
            "pid": self.pid,
            "queues": list(self.queues),
            "state": self.state,
            "current_job": self.current_job,
            "current_jobs": list(self.current_jobs),
            "done": self.done,
            "failed": self.failed,
            "last_heartbeat": self.last_heartbeat.isoformat() if self.last_heartbeat else None,
            "stopping": self.stopping,
            "alive": self.alive,
            "beat_age_s": round(self.beat_age, 1) if self.beat_age is not None else None,
            "workbench": self.workbench,
        }

    def on_host(self, host: str) -> bool:
        """Whether this worker runs on `host`: its host name (any case) or its address."""
        return host.lower() in (self.hostname.lower(), self.address.lower())


def _key(name: str) -> str:
    return Worker.redis_worker_namespace_prefix + name


def host_address(ip_address: str | None) -> str:
    """The IP part of RQ's `ip_address` ("192.0.2.3:51234", the client address from CLIENT INFO)."""
    if not ip_address or ip_address == "unknown":
        return "?"
    host, _, port = ip_address.rpartition(":")
    return (host if host and port.isdigit() else ip_address).strip("[]")


def _info(worker: BaseWorker, liveness: tuple[bool, int, bytes | None] | None = None) -> WorkerInfo:
    alive, beat_age, workbench = _judge(worker, liveness)
    jobs = tuple(sorted({execution.job_id for execution in worker.get_current_executions()}))
    return WorkerInfo(
        name=worker.name,
        hostname=worker.hostname or "?",
        address=host_address(worker.ip_address),
        pid=worker.pid,
        queues=tuple(worker.queue_names()),
        state=str(worker.get_state()),
        current_job=worker.get_current_job_id(),
        done=worker.successful_job_count,
        failed=worker.failed_job_count,
        last_heartbeat=worker.last_heartbeat,
        stopping=worker.shutdown_requested_date is not None,
        alive=alive,
        beat_age=beat_age,
        workbench=workbench,
        current_jobs=jobs,
    )


def _judge(worker: BaseWorker, liveness: tuple[bool, int, bytes | None] | None) -> tuple[bool, float | None, bool]:
    """(alive, seconds since the last beat, workbench worker) from (in the workbench set, PTTL, value)."""
    if liveness is not None:
        member, pttl, raw = liveness
        info = parse_alive(raw)
        if info is not None:
            ttl_ms = info.get("ttl")
            age = (ttl_ms - pttl) / 1000 if isinstance(ttl_ms, int | float) and pttl >= 0 else None
            return True, max(age, 0.0) if age is not None else None, True
        if member:
            return False, None, True
    # A plain RQ worker: RQ's own rule, a heartbeat within its TTL.
    beat = worker.last_heartbeat
    if beat is None:
        return False, None, False
    age = (datetime.now(UTC) - beat.replace(tzinfo=beat.tzinfo or UTC)).total_seconds()
    return age < worker.worker_ttl + 60, None, False


def _liveness(connection: Redis, names: list[str]) -> list[tuple[bool, int, bytes | None]]:
    """For each worker name: (in the workbench's worker set, PTTL of its liveness key, its value), one round trip."""
    if not names:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.sismember(WORKERS_KEY, name)
            pipe.pttl(alive_key(name))
            pipe.get(alive_key(name))
        flat = pipe.execute()
    return [(bool(flat[i]), int(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]


#: The state shown for a member of RQ's worker registry that is not a worker key at all (nothing to stop).
NOT_A_WORKER = "not a worker key"
#: What a worker record that RQ cannot read raises: a malformed date or number, a key that is not a hash.
UNREADABLE_WORKER = (ValueError, TypeError, OverflowError, AttributeError, redis.ResponseError)


def _unreadable(key: str, exc: Exception) -> WorkerInfo:
    """A registered worker whose record cannot be read: listed by name, with the reason."""
    prefix = Worker.redis_worker_namespace_prefix
    return WorkerInfo(
        name=key[len(prefix) :] if key.startswith(prefix) else key,
        hostname="?",
        address="?",
        pid=None,
        queues=(),
        state="unreadable" if key.startswith(prefix) else NOT_A_WORKER,
        current_job=None,
        done=0,
        failed=0,
        last_heartbeat=None,
        stopping=False,
        alive=False,
        unreadable=f"its record cannot be read ({type(exc).__name__}: {exc})"[:200],
    )


def _read(connection: Redis, key: str, liveness: tuple[bool, int, bytes | None] | None = None) -> WorkerInfo | None:
    """The worker registered under `key`, None if its record is gone, or an unreadable entry: never an error."""
    try:
        worker = Worker.find_by_key(key, connection=connection, serializer=SERIALIZER)
        return _info(worker, liveness) if worker is not None else None
    except UNREADABLE_WORKER as exc:
        return _unreadable(key, exc)


def find_worker(connection: Redis, name: str) -> WorkerInfo | None:
    """The registered worker called `name`, or None once it has left the broker."""
    if _key(name) not in worker_keys(connection).keys:
        return None
    return _read(connection, _key(name))


def list_workers(connection: Redis) -> list[WorkerInfo]:
    """Every worker registered in the broker, from any machine, by host, address, then name.

    One forged or garbled record is one "unreadable" entry; every other worker is still listed.
    """
    keys, problem = worker_keys(connection)
    prefix = Worker.redis_worker_namespace_prefix
    liveness = _liveness(connection, [key[len(prefix) :] if key.startswith(prefix) else key for key in keys])
    infos = [info for key, live in zip(keys, liveness, strict=True) if (info := _read(connection, key, live))]
    if problem:  # the registry itself is forged: said as one entry, never an error
        infos.append(replace(_unreadable(REDIS_WORKER_KEYS, ValueError()), unreadable=problem))
    return sorted(infos, key=lambda info: (info.hostname, info.address, info.name))


def select_workers(
    connection: Redis, *, queue: str | None = None, name: str | None = None, host: str | None = None
) -> list[WorkerInfo]:
    """The workers named by one selector (none given: all of them); NotFound when a selector matches none."""
    everyone = [info for info in list_workers(connection) if info.state != NOT_A_WORKER]
    if host is not None:
        chosen = [info for info in everyone if info.on_host(host)]
        if not chosen:
            raise NotFound(
                f"no registered worker runs on host {host!r} (by host name or address); "
                "see kill_thread/list_workers.py."
            )
        return chosen
    if name is not None:
        chosen = [info for info in everyone if info.name == name]
        if not chosen:
            raise NotFound(f"no worker named {name!r} is registered in the broker; see kill_thread/list_workers.py.")
        return chosen
    if queue is not None:
        chosen = [info for info in everyone if queue in info.queues]
        if not chosen:
            raise NotFound(f"no registered worker listens on queue {queue!r}; see kill_thread/list_workers.py.")
        return chosen
    return everyone


def listening(connection: Redis, name: str) -> bool:
    """Whether a live process is subscribed to the worker's command channel (a crashed one is not)."""
    channel = PUBSUB_CHANNEL_TEMPLATE % name
    return any(count > 0 for _, count in connection.pubsub_numsub(channel))


@dataclass
class Target:
    """One worker being stopped, and what happened to it."""

    info: WorkerInfo
    commanded: bool = False
    stopped_job: str | None = None  # the job a force stop interrupted
    last_kill: float = 0.0
    gone: bool = False
    latest: WorkerInfo | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def why_not_gone(self, connection: Redis) -> str:
        """A short reason for a worker that is still registered, for the final report."""
        latest = self.latest or self.info
        if not self.commanded and latest.state == WorkerStatus.STARTED:
            return f"{self.name} (still starting up: it never became ready for commands)"
        if not listening(connection, self.name):
            beat = latest.last_heartbeat.isoformat(timespec="seconds") if latest.last_heartbeat else "never"
            return f"{self.name} (not listening for commands, last heartbeat {beat}: it may have died unregistered)"
        if latest.current_job:
            return f"{self.name} (still running job {latest.current_job})"
        return f"{self.name} ({latest.state})"


@dataclass
class StopOutcome:
    gone: list[Target] = field(default_factory=list)
    left: list[Target] = field(default_factory=list)


def _ready_for_commands(connection: Redis, info: WorkerInfo) -> bool:
    """Subscribed, and past start-up: RQ installs its signal handlers only after it subscribes."""
    return info.state != WorkerStatus.STARTED and listening(connection, info.name)


def _command(connection: Redis, target: Target, latest: WorkerInfo, force: bool) -> None:
    """Send the shutdown once the worker can act on it; with force, stop its job, repeating until it ends."""
    if not target.commanded:
        if latest.stopping:  # told before: a second shutdown would be a cold stop for a plain `rq worker`
            target.commanded = True
        elif _ready_for_commands(connection, latest):
            send_shutdown_command(connection, target.name)
            target.commanded = True
        return
    # kill-horse only after the worker recorded the shutdown, so it cannot pick up another job;
    # repeated because a job between dequeue and start ignores it.
    if force and latest.current_job and latest.stopping:
        if time.monotonic() - target.last_kill >= defaults.FORCE_RESEND_S:
            send_kill_horse_command(connection, target.name)
            target.last_kill = time.monotonic()
            target.stopped_job = latest.current_job


def stop_workers(
    connection: Redis,
    workers: list[WorkerInfo],
    *,
    force: bool,
    grace_s: float,
    on_gone: Callable[[Target], None] = lambda target: None,
) -> StopOutcome:
    """Stop `workers` warm (or by force) and wait up to `grace_s` for each to leave the broker."""
    targets = [Target(info) for info in workers]
    deadline = time.monotonic() + grace_s
    while True:
        for target in targets:
            if target.gone:
                continue
            latest = find_worker(connection, target.name)
            if latest is None:
                target.gone = True
                on_gone(target)
                continue
            target.latest = latest
            _command(connection, target, latest, force)
        if all(t.gone for t in targets) or time.monotonic() >= deadline:
            break
        time.sleep(defaults.KILL_POLL_INTERVAL_S)
    return StopOutcome(gone=[t for t in targets if t.gone], left=[t for t in targets if not t.gone])


def job_status(connection: Redis, job_id: str) -> str | None:
    """The job's status now ("failed", "queued", ...), or None when the broker no longer has it."""
    try:
        return JobStatus(fetch_job(job_id, connection).get_status(refresh=True)).value
    except (NoSuchJobError, InvalidJobOperation):
        return None
    except (UnreadableRecord, ValueError, TypeError, redis.ResponseError):
        return "unreadable"


def job_fate(connection: Redis, job_id: str, stopped_on: str) -> str:
    """What became of a job a force stop interrupted on worker `stopped_on`, in a few words."""
    try:
        job = fetch_job(job_id, connection)
    except NoSuchJobError:
        return "is gone from the broker"
    status = JobStatus(job.get_status(refresh=False))
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return f"was re-queued for a retry ({status.value})"
    if status == JobStatus.STARTED and job.worker_name and job.worker_name != stopped_on:
        return f"was re-queued for a retry and now runs on {job.worker_name}"
    return f"ended {status.value}"


@dataclass(frozen=True)
class JobStop:
    job_id: str
    worker: str
    status: str | None  # the job's status afterwards; "started" if it did not stop in time


def stop_job(connection: Redis, job_id: str, wait_s: float = defaults.STOP_JOB_WAIT_S) -> JobStop:
    """Stop one running job on whichever worker runs it; it ends "stopped" (RQ's stop-job semantics)."""
    job = _job_to_stop(connection, job_id)
    status = JobStatus(job.get_status(refresh=False))
    if status != JobStatus.STARTED or not job.worker_name:
        raise WorkbenchError(f"job {job_id} is {status.value}, not running; only a running job can be stopped.")
    worker = job.worker_name
    if not listening(connection, worker):
        raise WorkbenchError(
            f"job {job_id} is marked running on worker {worker}, which is not listening for commands "
            "(it may have died); it will be failed when RQ cleans up abandoned jobs."
        )
    try:
        send_stop_job_command(connection, job_id, serializer=SERIALIZER)
    except (NoSuchJobError, InvalidJobOperation):
        raise WorkbenchError(f"job {job_id} ended before it could be stopped.") from None
    sent = time.monotonic()
    deadline = sent + wait_s
    while (status := job_status(connection, job_id)) == JobStatus.STARTED and time.monotonic() < deadline:
        time.sleep(defaults.KILL_POLL_INTERVAL_S)
        if time.monotonic() - sent >= defaults.FORCE_RESEND_S:
            # A job between dequeue and the start of its function ignores the command: say it again.
            _send_stop_job(connection, job_id)
            sent = time.monotonic()
    return JobStop(job_id, worker, status)


def _job_to_stop(connection: Redis, job_id: str) -> CatalogJob:
    """The job to stop; NotFound when there is none, a sentence saying what the key holds when it is no job record."""
    key = CatalogJob.key_for(job_id)
    kind = connection.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "none":
        raise NotFound(f"no job with id {job_id!r} exists in the broker.")
    if kind != "hash":
        raise WorkbenchError(
            f"the broker's key for job {job_id!r} holds a {kind}, not a job record (forged or written by "
            "something else); there is no job to stop."
        )
    try:
        return fetch_job(job_id, connection)
    except NoSuchJobError:
        raise WorkbenchError(
            f"job {job_id!r} has a record in the broker but no task data in it (forged or half written); "
            "it cannot be running, so there is nothing to stop."
        ) from None
    except (UnreadableRecord, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise WorkbenchError(
            f"job {job_id!r} has a record in the broker that cannot be read ({exc}); "
            "it is not a job the workbench can stop."
        ) from None


def _send_stop_job(connection: Redis, job_id: str) -> None:
    try:
        send_stop_job_command(connection, job_id, serializer=SERIALIZER)
    except (NoSuchJobError, InvalidJobOperation):
        pass  # it ended meanwhile, which is what we wanted
