"""The supervisor: RQ's WorkerPool, made to tell crashes from requested stops and to close RQ's gaps.

RQ's pool respawns every worker that exits, including one a person stopped with a shutdown
command, and leaves a crashed worker's job "started" for minutes. Here each worker process
reports why it ended (its exit code, see `workbench.worker`):

- a crashed, killed or unexpectedly exited worker is replaced at once (its process group is
  killed first, so nothing it started lives on) and its job failed or re-queued;
- a worker stopped on purpose stays stopped;
- a worker stuck past its job's timeout plus a grace (SIGALRM did not fire: the job is stuck in
  C code, or the process is stopped) is killed and the job failed with a timeout reason;
- workers die with the consumer (PR_SET_PDEATHSIG), and the janitor (`workbench.janitor`)
  recovers what any dead worker, of this consumer or another, left behind;
- while the broker is unreachable the pool says so and waits; workers reconnect by themselves.
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import get_context
from uuid import uuid4

import redis
from rq.utils import now, utcformat, utcparse
from rq.worker_pool import WorkerData, WorkerPool

from . import defaults, schedules, settings
from .broker import client as broker_client
from .broker_watch import BrokerWatch
from .catalog_load import load_catalog
from .heartbeat import alive_key, heartbeat_interval, parse_alive, wait_for_broker
from .janitor import Janitor
from .jobs import SERIALIZER, make_queue
from .processes import die_with_parent
from .recovery import abandon_worker, fail_overdue
from .threaded import ThreadedWorker
from .worker import EXIT_COMMANDED, EXIT_CRASHED, EXIT_DONE, EXIT_FENCED, ORPHANED_SIGNAL, WorkbenchWorker, worker_name

#: Worker states shown by the consoles.
RUNNING, STOPPING, STOPPED, CRASHED, DONE = "running", "stopping", "stopped", "crashed", "done"

EventSink = Callable[[str, str], None]
#: Receives worker output lines as (worker name, line) pairs, a batch per poll: printing is the costly part.
LogSink = Callable[[list[tuple[str, str]]], None]


@dataclass
class Slot:
    """One of the pool's N places; its worker changes when a crashed one is replaced."""

    number: int
    name: str = ""
    pid: int = 0
    state: str = RUNNING
    restarts: int = 0
    started_at: float = 0.0
    respawn_at: float = 0.0
    overdue_job: str = ""
    job: str | None = None  # the job its last heartbeat reported, and that job's timeout deadline
    deadline: float | None = None
    output: bytes = field(default=b"", repr=False)


class Supervisor(WorkerPool):
    """Starts N WorkbenchWorker processes and keeps them honest; `poll()` drives it."""

    def __init__(
        self,
        url: str,
        queue_names: list[str],
        num_workers: int,
        *,
        burst: bool = False,
        max_jobs: int | None = None,
        threads: int = defaults.DEFAULT_THREADS,
        on_event: EventSink | None = None,
        on_log: LogSink | None = None,
    ) -> None:
        # Loaded before the workers fork, so they share its pages instead of each importing the task
        # modules on its first job (requests included): 0.3-1.5 s per worker and twice the memory otherwise.
        load_catalog()
        connection = broker_client(url, socket_timeout=5)
        super().__init__(queue_names, connection, num_workers, worker_class=WorkbenchWorker, serializer=SERIALIZER)
        self.url = url
        self.burst = burst
        self.max_jobs = max_jobs
        self.threads = threads  # jobs each worker runs at once (`workbench.threaded` when more than one)
        self.slots = [Slot(number) for number in range(1, num_workers + 1)]
        self.broker_down_since: float | None = None
        self._last_refusal = ""  # the broker's last refusal said in the log (see _guarded)
        self.timeout_grace = settings.read(defaults.ENV_TIMEOUT_GRACE)
        self.janitor = Janitor(connection, spared=self._own_live_workers)
        self._on_event = on_event or (lambda name, message: None)
        self._on_log = on_log or (lambda lines: None)
        self._lines: list[tuple[str, str]] = []
        self._selector = selectors.DefaultSelector()
        self._context = get_context("fork")
        self._next_deadline_check = 0.0
        # Signals (Ctrl-C) wake `poll` at once instead of at the end of its wait.
        self._wake_read, self._wake_write = os.pipe()
        for fd in (self._wake_read, self._wake_write):
            os.set_blocking(fd, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self.watch = BrokerWatch(connection, queue_names)
        self._next_restart_check = 0.0
        self._next_ping = 0.0
        self._probe = broker_client(url, socket_timeout=1, socket_connect_timeout=1)
        self.scheduler: schedules.SchedulerThread | None = None  # delayed, periodic and retry-back-off jobs

    # -- starting -------------------------------------------------------------------
    def start_workers(self) -> None:  # type: ignore[override]
        self.status = self.Status.STARTED
        # RQ parses timestamps on every job; warm `_strptime` (module, locale, regex caches) here so the
        # workers share it instead of each building its own on the first job.
        utcparse(utcformat(now()))
        gc.freeze()  # and keep the collector from writing to those shared objects in every worker
        try:
            signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        except ValueError:
            pass  # not the main thread: polls then end on their timeout
        for slot in self.slots:
            self._spawn(slot)
        self.scheduler = schedules.start(self.url, self._queue_names, self._on_event)

    def _spawn(self, slot: Slot) -> None:
        slot.name = worker_name(slot.number, uuid4().hex[:4])
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        process = self._context.Process(
            target=run_worker,
            args=(slot.name, self.url, self._queue_names, self.burst, self.max_jobs, write_fd, parent, self.threads),
            name=f"worker {slot.name}",
            daemon=False,
        )
        process.start()
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._selector.register(read_fd, selectors.EVENT_READ, slot)
        slot.pid, slot.state, slot.started_at, slot.overdue_job = process.pid or 0, RUNNING, time.monotonic(), ""
        slot.job = slot.deadline = None
        self.worker_dict[slot.name] = WorkerData(name=slot.name, pid=slot.pid, process=process)

    # -- watching -------------------------------------------------------------------
    def poll(self, timeout: float = 0.2) -> None:
        """Forward worker output for up to `timeout` seconds, then reap, replace and recover."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            events = self._selector.select(left)
            if not events:
                break
            urgent = False
            for key, _ in events:
                if key.data is None:  # a signal arrived
                    _drain(key.fd)
                    urgent = True
                else:
                    urgent = self._read(key.fd, key.data) or urgent
            if urgent:
                break  # a signal or a worker's exit: act on it now
        if self._lines:
            lines, self._lines = self._lines, []
            self._on_log(lines)
        self.check_workers(respawn=self.status != self.Status.STOPPED)
        self._guarded(self._kill_overdue)
        self._guarded(self._check_restart)
        self._guarded(self._sweep)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one supervision step that needs the broker; note an outage instead of failing."""
        if self.broker_down_since is not None and not self._broker_answers():
            return  # still away: a step that happens not to touch the broker must not announce its return
        try:
            step()
        except redis.ResponseError as exc:  # a key someone wrote in a shape RQ or we do not (forged): skip this round
            refusal = str(exc)[:200]
            if refusal != self._last_refusal:  # said once, not every 0.2 s
                self._last_refusal = refusal
                said = f"refused a command ({refusal}); a key may hold data the workbench did not write"
                self._on_event("broker", said)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            if self.broker_down_since is None:
                self.broker_down_since = time.monotonic()
                self._on_event("broker", "is unreachable; workers will reconnect when it is back")
            self.janitor.note_outage()
            return
        if self.broker_down_since is not None:
            outage = time.monotonic() - self.broker_down_since
            self.broker_down_since = None
            self.janitor.note_outage()
            self._on_event("broker", f"is reachable again after {outage:.0f} s")

    def _broker_answers(self) -> bool:
        """During an outage: PING at most once a second, on a probe that gives up within a second (a cut
        link or a frozen broker would hold the supervisor, and the workers' log lines, for the full timeout)."""
        now = time.monotonic()
        if now < self._next_ping:
            return False
        self._next_ping = now + 1.0
        try:
            self._probe.ping()
        except (redis.ConnectionError, redis.TimeoutError):
            self._probe.connection_pool.disconnect()
            self.janitor.note_outage()
            return False
        return True

    def _read(self, fd: int, slot: Slot) -> bool:
        """Collect a worker's output; return True when its pipe closed (the worker is exiting)."""
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return False
        closed = not chunk
        if closed:
            self._selector.unregister(fd)
            os.close(fd)
            chunk = b"\n" if slot.output else b""
        slot.output += chunk
        *lines, slot.output = slot.output.split(b"\n")
        for line in lines:
            if line.strip():
                self._lines.append((slot.name, line.decode(errors="replace").rstrip()))
        return closed

    def check_workers(self, respawn: bool = True) -> None:
        self.reap_workers()
        if not respawn:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.state == CRASHED and now >= slot.respawn_at:
                old = slot.name
                slot.restarts += 1
                self._spawn(slot)
                self._on_event(slot.name, f"replaces {old} in slot {slot.number}")

    def reap_workers(self) -> None:
        for data in list(self.worker_dict.values()):
            data.process.join(0)
            if data.process.exitcode is not None:
                self.handle_dead_worker(data)

    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        super().handle_dead_worker(worker_data)
        slot = next(s for s in self.slots if s.name == worker_data.name)
        code = worker_data.process.exitcode
        _kill_group(worker_data.pid)  # whatever the worker started dies with it: no orphans
        stopping = self.status == self.Status.STOPPED
        if code == EXIT_COMMANDED:
            slot.state = STOPPED
            self._on_event(slot.name, "stopped on request (not replaced)")
        elif code == EXIT_DONE and (stopping or self.burst or self.max_jobs):
            slot.state = STOPPED if stopping else DONE
        else:
            slot.state = STOPPED if stopping else CRASHED
            quick = time.monotonic() - slot.started_at < defaults.QUICK_CRASH_S
            slot.respawn_at = time.monotonic() + (defaults.RESPAWN_BACKOFF_S if quick else 0.0)
            if slot.overdue_job:
                reason = "killed past its job's timeout"
            elif code is not None and code < 0:
                reason = f"killed by signal {signal.Signals(-code).name}"
            elif code == EXIT_DONE:
                reason = "exited with status 0 unasked (an internal error)"
            elif code == EXIT_FENCED:
                reason = "exited hard: it lost the broker and its job did not stop in time"
            else:
                reason = f"exited with status {code}"
            self._on_event(slot.name, f"died ({reason}){self._recover(slot)}")

    def _recover(self, slot: Slot) -> str:
        """Fail or re-queue the dead worker's job now; if the broker is away, the janitor will."""
        if self.broker_down_since is not None:
            return "; its job will be recovered when the broker is back"  # not block the supervisor on it
        try:
            jobs = []
            if slot.overdue_job and fail_overdue(self.connection, slot.overdue_job, _timeout_reason(slot)):
                jobs.append(slot.overdue_job)
            jobs += abandon_worker(self.connection, slot.name)
        except (redis.ConnectionError, redis.TimeoutError):
            return "; its job will be recovered when the broker is back"
        return f"; its job {', '.join(jobs)} was failed or re-queued" if jobs else ""

    def _kill_overdue(self) -> None:
        """The backstop for SIGALRM: kill a worker whose job ran past its timeout plus the grace."""
        now = time.monotonic()
        if now < self._next_deadline_check:
            return
        self._next_deadline_check = now + min(1.0, heartbeat_interval())
        live = [s for s in self.slots if s.name in self.worker_dict and not s.overdue_job]
        if not live:
            return
        values = self.connection.mget([alive_key(s.name) for s in live])
        for slot, raw in zip(live, values, strict=True):
            info = parse_alive(raw)
            if info is not None:  # a lapsed key keeps the last known job: a stopped process beats no more
                slot.job, slot.deadline = info.get("job"), info.get("deadline")
            deadline = slot.deadline
            if slot.job and isinstance(deadline, int | float) and time.time() > deadline + self.timeout_grace:
                slot.overdue_job = str(slot.job)
                self._on_event(slot.name, f"is stuck past the timeout of job {slot.overdue_job}; killing it")
                _kill_group(slot.pid)

    def _check_restart(self) -> None:
        """Say so when the broker came back as a new process (run id) and how many jobs went with it."""
        if time.monotonic() < self._next_restart_check:
            return
        self._next_restart_check = time.monotonic() + defaults.RESTART_CHECK_INTERVAL_S
        restart = self.watch.check()
        if restart is not None:
            self._on_event("broker", restart.sentence())

    def _sweep(self) -> None:
        sweep = self.janitor.maybe_sweep()
        if sweep is None:
            return
        for name in sweep.dead_workers:
            self._on_event(name, "was dead (no heartbeat); unregistered")
        if sweep.recovered:
            self._on_event("janitor", f"failed or re-queued abandoned job(s) {', '.join(sweep.recovered)}")
        if sweep.quarantined:
            self._on_event("janitor", f"quarantined malformed job record(s) {', '.join(sweep.quarantined)}")

    def _own_live_workers(self) -> set[str]:
        return {s.name for s in self.slots if s.name in self.worker_dict and not s.overdue_job}

    @property
    def all_stopped(self) -> bool:
        """True when no worker process is left and none will be replaced."""
        self.reap_workers()
        return not self.worker_dict and not any(s.state == CRASHED for s in self.slots)

    # -- stopping -------------------------------------------------------------------
    def stop_workers(self, cold: bool = False) -> None:
        """Warm stop (SIGINT: finish the current job) or cold stop (SIGTERM: stop it now)."""
        self.status = self.Status.STOPPED
        if self.scheduler is not None:
            self.scheduler.stop()  # hands the scheduling locks to another consumer at once
        for slot in self.slots:
            if slot.name in self.worker_dict:
                slot.state = STOPPING
                self.stop_worker(self.worker_dict[slot.name], signal.SIGTERM if cold else signal.SIGINT)
            elif slot.state == CRASHED:
                slot.state = STOPPED  # not replaced any more

    def kill_all(self) -> None:
        """Last resort when workers ignore a cold stop: SIGKILL each worker's process group."""
        for data in list(self.worker_dict.values()):
            _kill_group(data.pid)
        self.reap_workers()

    def queues_empty(self) -> bool:
        return all(make_queue(name, self.connection).count == 0 for name in self._queue_names)


def _timeout_reason(slot: Slot) -> str:
    return f"JobTimeoutException: the job overran its timeout and did not stop; worker {slot.name} was killed"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def run_worker(
    name: str,
    url: str,
    queue_names: list[str],
    burst: bool,
    max_jobs: int | None,
    output_fd: int,
    parent_pid: int,
    threads: int = defaults.DEFAULT_THREADS,
) -> None:
    """Body of a worker process: own process group, output to the supervisor's pipe."""
    os.setpgrp()  # the terminal's Ctrl-C reaches the supervisor only, which decides what to send
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    signal.set_wakeup_fd(-1)  # the supervisor's wake-up pipe is not this process's business
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(ORPHANED_SIGNAL, signal.SIG_DFL)
    die_with_parent(parent_pid, ORPHANED_SIGNAL, EXIT_DONE)  # not Linux: the janitor recovers its jobs
    code = EXIT_CRASHED
    try:
        connection = broker_client(url)
        if not wait_for_broker(connection, lambda: os.getppid() == parent_pid):
            os._exit(EXIT_DONE)
        queues = [make_queue(queue_name, connection) for queue_name in queue_names]
        worker = (
            ThreadedWorker(queues, name=name, connection=connection, broker_url=url, threads=threads)
            if threads > 1
            else WorkbenchWorker(queues, name=name, connection=connection, broker_url=url)
        )
        try:
            worker.work(burst=burst, max_jobs=max_jobs, logging_level="INFO", with_scheduler=False)
        except SystemExit:
            pass
        code = worker.exit_code
    except KeyboardInterrupt:
        code = EXIT_DONE  # stopped before the work loop installed its handlers
    except BaseException as exc:  # noqa: BLE001 - the supervisor needs an exit code, not a traceback
        print(f"worker {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
