"""The supervisor: RQ's WorkerPool, made to tell crashes from requested stops.

RQ's pool respawns every worker that exits, including one a person stopped with a shutdown
command, and leaves a crashed worker's job "started" for minutes. Here each worker process
reports why it ended (its exit code, see `workbench.worker`): a crashed worker is replaced and
its job failed or re-queued at once; a worker stopped on purpose stays stopped.
"""

from __future__ import annotations

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
from rq.worker_pool import WorkerData, WorkerPool

from .jobs import SERIALIZER, make_queue
from .recovery import abandon_worker
from .worker import EXIT_COMMANDED, EXIT_CRASHED, EXIT_DONE, WorkbenchWorker, worker_name

#: Worker states shown by the consoles.
RUNNING, STOPPING, STOPPED, CRASHED, DONE = "running", "stopping", "stopped", "crashed", "done"

EventSink = Callable[[str, str], None]


@dataclass
class Slot:
    """One of the pool's N places; its worker changes when a crashed one is replaced."""

    number: int
    name: str = ""
    pid: int = 0
    state: str = RUNNING
    restarts: int = 0
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
        on_event: EventSink | None = None,
        on_log: EventSink | None = None,
    ) -> None:
        connection = redis.Redis.from_url(url)
        super().__init__(queue_names, connection, num_workers, worker_class=WorkbenchWorker, serializer=SERIALIZER)
        self.url = url
        self.burst = burst
        self.max_jobs = max_jobs
        self.slots = [Slot(number) for number in range(1, num_workers + 1)]
        self._on_event = on_event or (lambda name, message: None)
        self._on_log = on_log or (lambda name, line: None)
        self._selector = selectors.DefaultSelector()
        self._context = get_context("fork")

    # -- starting -------------------------------------------------------------------
    def start_workers(self) -> None:  # type: ignore[override]
        self.status = self.Status.STARTED
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        slot.name = worker_name(slot.number, uuid4().hex[:4])
        read_fd, write_fd = os.pipe()
        process = self._context.Process(
            target=run_worker,
            args=(slot.name, self.url, self._queue_names, self.burst, self.max_jobs, write_fd),
            name=f"worker {slot.name}",
            daemon=False,
        )
        process.start()
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._selector.register(read_fd, selectors.EVENT_READ, slot)
        slot.pid, slot.state = process.pid or 0, RUNNING
        self.worker_dict[slot.name] = WorkerData(name=slot.name, pid=slot.pid, process=process)

    # -- watching -------------------------------------------------------------------
    def poll(self, timeout: float = 0.2) -> None:
        """Forward worker output for up to `timeout` seconds, then reap and replace dead workers."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            events = self._selector.select(left)
            if not events:
                break
            for key, _ in events:
                self._read(key.fd, key.data)
        self.check_workers(respawn=self.status != self.Status.STOPPED)

    def _read(self, fd: int, slot: Slot) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._selector.unregister(fd)
            os.close(fd)
            chunk = b"\n" if slot.output else b""
        slot.output += chunk
        *lines, slot.output = slot.output.split(b"\n")
        for line in lines:
            if line.strip():
                self._on_log(slot.name, line.decode(errors="replace").rstrip())

    def check_workers(self, respawn: bool = True) -> None:
        self.reap_workers()
        if not respawn:
            return
        for slot in self.slots:
            if slot.state == CRASHED:
                slot.restarts += 1
                self._spawn(slot)
                self._on_event(slot.name, f"replaces a crashed worker in slot {slot.number}")

    def reap_workers(self) -> None:
        for data in list(self.worker_dict.values()):
            data.process.join(0)
            if data.process.exitcode is not None:
                self.handle_dead_worker(data)

    def handle_dead_worker(self, worker_data: WorkerData) -> None:
        super().handle_dead_worker(worker_data)
        slot = next(s for s in self.slots if s.name == worker_data.name)
        code = worker_data.process.exitcode
        if code == EXIT_COMMANDED:
            slot.state = STOPPED
            self._on_event(slot.name, "stopped on request (not replaced)")
        elif code == EXIT_DONE:
            slot.state = STOPPED if self.status == self.Status.STOPPED else DONE
        else:
            slot.state = CRASHED
            reason = f"killed by signal {-code}" if code and code < 0 else f"exited with status {code}"
            jobs = abandon_worker(self.connection, slot.name)
            lost = f"; its job {', '.join(jobs)} was failed or re-queued" if jobs else ""
            self._on_event(slot.name, f"died ({reason}){lost}")

    @property
    def all_stopped(self) -> bool:
        """True when no worker process is left and none will be replaced."""
        self.reap_workers()
        return not self.worker_dict and not any(s.state == CRASHED for s in self.slots)

    # -- stopping -------------------------------------------------------------------
    def stop_workers(self, cold: bool = False) -> None:  # type: ignore[override]
        """Warm stop (SIGINT: finish the current job) or cold stop (SIGTERM: stop it now)."""
        self.status = self.Status.STOPPED
        for slot in self.slots:
            if slot.name in self.worker_dict:
                slot.state = STOPPING
                self.stop_worker(self.worker_dict[slot.name], signal.SIGTERM if cold else signal.SIGINT)

    def kill_all(self) -> None:
        """Last resort when workers ignore a cold stop: SIGKILL each worker's process group."""
        for data in list(self.worker_dict.values()):
            try:
                os.killpg(data.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.reap_workers()

    def queues_empty(self) -> bool:
        return all(make_queue(name, self.connection).count == 0 for name in self._queue_names)


def run_worker(name: str, url: str, queue_names: list[str], burst: bool, max_jobs: int | None, output_fd: int) -> None:
    """Body of a worker process: own process group, output to the supervisor's pipe."""
    os.setpgrp()  # the terminal's Ctrl-C reaches the supervisor only, which decides what to send
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = EXIT_CRASHED
    try:
        connection = redis.Redis.from_url(url)
        queues = [make_queue(queue_name, connection) for queue_name in queue_names]
        worker = WorkbenchWorker(queues, name=name, connection=connection)
        try:
            worker.work(burst=burst, max_jobs=max_jobs, logging_level="INFO", with_scheduler=False)
        except SystemExit:
            pass
        code = worker.exit_code
    except BaseException as exc:  # noqa: BLE001 - the supervisor needs an exit code, not a traceback
        print(f"worker {name} failed: {exc}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
