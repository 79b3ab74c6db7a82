"""Schedules: periodic batches (`--every 10m`, `--cron "*/5 * * * *"`), and the scheduler every
consumer runs so that delayed batches, periodic ones and retry back-offs fire with no extra process.

Built on RQ's own scheduling, not a home-made clock:

- Delayed jobs (`--in`, `--at`) and retry back-offs live in RQ's ScheduledJobRegistry; RQ's
  `RQScheduler` moves them onto their queue when due. RQ holds one lock per queue
  (`rq:scheduler-lock:<queue>`), so exactly one consumer serving a queue moves its jobs.
- Periodic schedules are stored in the broker (`workbench:schedules`, one JSON record per name) and
  timed by RQ's `CronScheduler`/`CronJob` (interval or cron string, croniter, RQ's cron history and
  registry). One consumer at a time holds the lease `workbench:scheduler:lease` (RQ's own
  acquire-or-refresh lock script) and alone fires them; when it dies, its lease lapses and
  another consumer's scheduler takes over within `SCHEDULER_LEASE_S`.
- Exactly once per period: each firing is one MULTI/EXEC that WATCHes the lease and the schedule's
  record. It enqueues the batch (a named batch, `workbench.batches`) and records the firing, and is
  refused if the lease changed hands or another scheduler already fired that period.

Nothing here prints; the consumer's `on_event` hears what a person should know.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import redis
from redis import Redis
from rq import cron_job_registry
from rq.cron import CronJob, CronScheduler, get_cron_job_history_key
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.exceptions import DuplicateSchedulerError, SchedulerNotFound
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock
from rq.utils import current_timestamp

from . import defaults, durability, schedule_record, settings
from .broker import broker_errors
from .broker import client as broker_client
from .catalog import TaskSpec
from .catalog_load import load_catalog
from .errors import NotFound, UsageError, WorkbenchError
from .jobs import SERIALIZER
from .producer import Batch, stage
from .recovery import job_loads, quarantine
from .validators import say_duration

SCHEDULES_KEY = defaults.KEY_PREFIX + "schedules"
LEASE_KEY = defaults.KEY_PREFIX + "scheduler:lease"
EventSink = Callable[[str, str], None]


@dataclass(frozen=True)
class Schedule:
    """A periodic batch: what to enqueue, and when (every `every_s` seconds, or on a cron line)."""

    name: str
    task: str
    params: dict[str, Any]
    queue: str
    count: int = 1
    timeout_s: int | None = None
    retries: int = 0
    retry_intervals: tuple[int, ...] = ()
    every_s: int | None = None
    cron: str | None = None
    created: float = field(default_factory=time.time)
    last_fired: float | None = None
    last_batch: str | None = None
    fired: int = 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "retry_intervals": list(self.retry_intervals)}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes, name: str | None = None) -> Schedule:
        """The stored record, every field checked (`schedule_record.BadRecord`, a ValueError, if one is off)."""
        return cls(**schedule_record.check(raw, name))

    @property
    def repeats(self) -> str:
        return f"every {say_duration(self.every_s)}" if self.every_s else f"on cron '{self.cron}'"

    def batch(self, spec: TaskSpec) -> Batch:
        """A fresh batch for one firing, its parameters validated against the catalog again."""
        return Batch(
            spec,
            spec.validate(self.params),
            self.queue,
            self.count,
            self.timeout_s,
            self.retries,
            retry_intervals=self.retry_intervals,
        )

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """For --schedules --json: the record with times in ISO UTC and the next run."""
        following = next_run(self, now)
        return {
            **asdict(self),
            "retry_intervals": list(self.retry_intervals),
            "every": say_duration(self.every_s) if self.every_s else None,
            "created": _iso(self.created),
            "last_fired": _iso(self.last_fired),
            "next_run": following.isoformat() if following else None,
        }


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None


def add(connection: Redis, schedule: Schedule) -> durability.Confirmation | None:
    """Store a new schedule; a name already taken is refused (remove it first).

    Returns what the broker confirmed about it (on disk, on a replica: `workbench.durability`).
    """
    with broker_errors(connection, "saving the schedule"), durability.transaction(connection) as pipe:
        pipe.hsetnx(SCHEDULES_KEY, schedule.name, schedule.to_json())
        (added,) = pipe.execute()
    if not added:
        raise WorkbenchError(
            f"a schedule named {schedule.name} exists already; remove it with --unschedule {schedule.name} "
            "or choose another --name."
        )
    return pipe.confirmation


def remove(connection: Redis, name: str) -> None:
    """Remove the schedule stored under `name` (any stored name: an unreadable record too)."""
    with broker_errors(connection, "removing the schedule"):
        if not connection.hdel(SCHEDULES_KEY, name):
            raise NotFound(f"no schedule named {name} exists (see --schedules).")


def stored(connection: Redis, name: str) -> bool:
    """Whether a record is stored under exactly `name`, readable or not."""
    with broker_errors(connection, "reading the schedules"):
        return bool(connection.hexists(SCHEDULES_KEY, name))


def load_all(connection: Redis) -> tuple[list[Schedule], list[str]]:
    """Every stored schedule by name, and the names of records that cannot be read."""
    with broker_errors(connection, "reading the schedules"):
        raw = connection.hgetall(SCHEDULES_KEY)
    found, unreadable = [], []
    for name, record in sorted(raw.items()):
        try:
            found.append(Schedule.from_json(record, _text(name)))
        except (ValueError, TypeError):
            unreadable.append(_text(name))
    return found, unreadable


def cron_job(schedule: Schedule) -> CronJob:
    """RQ's CronJob for the schedule, its clock set from the broker's record of the last firing.

    A cron schedule that never fired counts from its creation (its first firing is the first cron
    time after that); an interval schedule that never fired is due at once, as RQ does it.
    """
    job = CronJob(
        schedule.queue,
        func_name=schedule.task,
        kwargs=schedule.params,
        interval=schedule.every_s,
        cron=schedule.cron,
        name=schedule.name,
    )
    last = schedule.last_fired or (schedule.created if schedule.cron else None)
    if last:
        job.set_enqueue_time(datetime.fromtimestamp(last, UTC))
    return job


def next_run(schedule: Schedule, now: datetime | None = None) -> datetime | None:
    """When it fires next (UTC); None for an interval schedule that has not fired yet (due at once)."""
    return cron_job(schedule).next_enqueue_time


def lease_holder(connection: Redis) -> str | None:
    """The scheduler that fires periodic schedules now (`host:pid:token`), or None."""
    with broker_errors(connection, "reading the scheduler lease"):
        raw = connection.get(LEASE_KEY)
    return _text(raw) if raw else None


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _spec(task: str) -> TaskSpec:
    spec = load_catalog().get(task)
    if spec is None or spec.extra.get("internal"):
        raise UsageError(f"not a catalog task: {task}")
    return spec


def fire(connection: Redis, name: str, token: str, now: float | None = None) -> Batch | None:
    """Enqueue one firing of schedule `name` as one transaction, if this scheduler still holds the
    lease and nobody fired this period yet; return the batch, or None when it was not this one's turn."""
    moment = time.time() if now is None else now
    with durability.transaction(connection) as pipe:
        try:
            pipe.watch(LEASE_KEY, SCHEDULES_KEY)
            holder, raw = pipe.get(LEASE_KEY), pipe.hget(SCHEDULES_KEY, name)
            if raw is None or holder is None or _text(holder) != token:
                return None
            schedule = Schedule.from_json(raw, name)
            if not cron_job(schedule).should_run():
                return None  # fired already this period (by us before a restart, or by another scheduler)
            batch = schedule.batch(_spec(schedule.task))
            pipe.multi()
            jobs = stage(pipe, connection, batch)
            fired = replace(schedule, last_fired=moment, last_batch=batch.batch_id, fired=schedule.fired + 1)
            pipe.hset(SCHEDULES_KEY, name, fired.to_json())
            history = get_cron_job_history_key(name)  # RQ's own record of what a cron job spawned
            pipe.zadd(history, {job.id: moment for job in jobs})
            pipe.zremrangebyrank(history, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipe.expire(history, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(name, pipe, enqueue_timestamp=moment)
            pipe.execute()
        except redis.WatchError:
            return None
    confirmation = pipe.confirmation
    if confirmation is not None and not confirmation.durable:
        # Fired and recorded, but not known to be safe: the consumer says so (a lost firing fires again).
        raise NotDurableFiring(batch, confirmation)
    return batch


class NotDurableFiring(Exception):
    """Raised when a periodic firing was enqueued but the broker did not confirm it durable in time."""

    def __init__(self, batch: Batch, confirmation: durability.Confirmation) -> None:
        super().__init__(f"batch {batch.batch_id} queued but not confirmed durable: {confirmation.problem}")
        self.batch = batch


class _ForwardWarnings(logging.Handler):
    """RQ's scheduler warnings reach the consumer as events instead of raw lines on its terminal."""

    def __init__(self, sink: EventSink) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink("scheduler", record.getMessage())


class SchedulerThread(threading.Thread):
    """A consumer's scheduler: RQ's RQScheduler for its queues, plus periodic schedules under the lease."""

    def __init__(self, url: str, queue_names: list[str], on_event: EventSink | None = None) -> None:
        super().__init__(name="workbench-scheduler", daemon=True)
        self.url, self.queue_names = url, list(queue_names)
        self.on_event = on_event or (lambda name, message: None)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
        self.lease_s = int(settings.read(defaults.ENV_SCHEDULER_LEASE))
        self.holding = False
        self._halt = threading.Event()
        self._connection: Redis | None = None
        self._queue_scheduler: RQScheduler | None = None
        self._cron: CronScheduler | None = None
        self._reported: set[str] = set()

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        handler = _ForwardWarnings(self.on_event)
        for name in ("rq.scheduler", "rq.cron"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.propagate = False
        self._connection = broker_client(self.url, socket_timeout=defaults.SOCKET_TIMEOUT_S)
        while not self._halt.is_set():
            try:
                self.tick()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.holding = False  # the broker is away: the pool reports the outage, we retry
            except Exception as exc:  # noqa: BLE001 - a scheduler error must not end the consumer
                self.on_event("scheduler", f"error, retrying: {type(exc).__name__}: {exc}")
            self._halt.wait(defaults.SCHEDULER_TICK_S)

    def tick(self) -> None:
        """One pass: move due delayed jobs of our queues, then fire due periodic schedules if we hold the lease."""
        connection = self._connection
        assert connection is not None
        if self._queue_scheduler is None:
            self._queue_scheduler = RQScheduler(
                self.queue_names,
                connection,
                interval=int(defaults.SCHEDULER_TICK_S),
                logging_level=logging.WARNING,
                serializer=SERIALIZER,
            )
            # RQ would rebuild a client from the pool's settings, which cannot rebuild a Sentinel client:
            # share ours, which follows a failover.
            self._queue_scheduler._connection = connection  # type: ignore[assignment]  # RQ declares it None
            self._queue_scheduler.register_birth()
        queues = self._queue_scheduler
        if queues.acquired_locks != set(self.queue_names):
            queues.acquire_locks()
        if queues.acquired_locks:
            queues.heartbeat()
            self._park_unloadable(connection, queues.acquired_locks)
            queues.enqueue_scheduled_jobs()
        self._periodic(connection)

    def _park_unloadable(self, connection: Redis, queue_names: set[str]) -> None:
        """Quarantine due scheduled jobs whose record cannot be loaded, before RQ's scheduler reads them:
        one malformed (or oversized) record must not stall every due job of its queue, tick after tick."""
        for name in queue_names:
            registry = ScheduledJobRegistry(name, connection=connection, serializer=SERIALIZER)
            for job_id in registry.get_jobs_to_schedule(current_timestamp()):
                reason = job_loads(connection, job_id)
                if reason:
                    quarantine(connection, name, job_id, f"malformed scheduled job record ({reason})")
                    registry.remove(job_id)
                    self.on_event("scheduler", f"quarantined malformed scheduled job record {job_id}")

    def _periodic(self, connection: Redis) -> None:
        outcome = acquire_or_refresh_lock(connection, LEASE_KEY, self.token, self.lease_s)
        holding = outcome in ("acquired", "refreshed")
        if holding != self.holding:
            self.holding = holding
            self.on_event("scheduler", "now fires the periodic schedules" if holding else "lost the schedule lease")
        if not holding:
            self._cron_death()
            return
        cron = self._cron_birth(connection)
        schedules, _ = load_all(connection)
        jobs = [cron_job(schedule) for schedule in schedules]
        changed = [job.to_dict() for job in jobs] != [job.to_dict() for job in cron.get_jobs()]
        cron._cron_jobs = jobs  # RQ's own record of what this scheduler runs, for RQ's tools
        for schedule, job in zip(schedules, jobs, strict=True):
            if not job.should_run():
                continue
            try:
                batch = fire(connection, schedule.name, self.token)
            except NotDurableFiring as exc:
                changed, batch = True, None
                self.on_event("scheduler", f"schedule {schedule.name} enqueued {exc}")
            except (UsageError, ValueError) as exc:
                if schedule.name not in self._reported:
                    self._reported.add(schedule.name)
                    self.on_event("scheduler", f"schedule {schedule.name} cannot fire: {exc}")
                continue
            if batch is not None:
                changed = True
                self.on_event("scheduler", f"schedule {schedule.name} enqueued batch {batch.batch_id} on {batch.queue}")
        if changed:
            cron._cron_jobs = [cron_job(schedule) for schedule in load_all(connection)[0]]
            cron.save()
        cron.heartbeat()

    # -- RQ's CronScheduler registration, so RQ's own tools see who schedules -------------
    def _cron_birth(self, connection: Redis) -> CronScheduler:
        if self._cron is None:
            self._cron = CronScheduler(connection, logging_level=logging.WARNING, name=f"workbench:{self.token}")
            try:
                self._cron.register_birth()
            except DuplicateSchedulerError:
                pass  # registered before a broker outage: the heartbeat refreshes it
        return self._cron

    def _cron_death(self) -> None:
        if self._cron is not None:
            try:
                self._cron.register_death()
            except SchedulerNotFound:
                pass  # already dropped from RQ's registry
        self._cron = None

    # -- stopping ------------------------------------------------------------------------
    def stop(self, timeout_s: float = 5.0) -> None:
        """End the loop and hand the locks and the lease over at once (rather than when they lapse)."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout_s)
        connection = self._connection
        if connection is None:
            return
        try:
            if self._queue_scheduler is not None:
                self._queue_scheduler.stop()
            if self.holding:
                release_lock(connection, LEASE_KEY, self.token)
                self._cron_death()
                self.holding = False
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # the locks lapse by themselves


def start(url: str, queue_names: list[str], on_event: EventSink | None = None) -> SchedulerThread:
    """Start a consumer's scheduler thread (see `SchedulerThread`)."""
    thread = SchedulerThread(url, queue_names, on_event)
    thread.start()
    return thread
