"""Stopping one task among several that run in threads of one process: stops and timeouts.

A signal reaches only a process's main thread, so a worker running several jobs at once
(`workbench.threaded`) raises a stop or a timeout inside the one thread that runs that job's task,
with CPython's `PyThreadState_SetAsyncExc`. It lands only inside the job's *task window*, which
`CatalogJob._execute` opens just before the task function and closes just after it: never in RQ's
bookkeeping before or after the task. One delivered as the window closes is withdrawn (the task
ended first), and a stop asked for before the window opens is raised as it opens.

A thread blocked in C (a `time.sleep`, a socket read) gets the exception when that call returns:
within a quarter of a second for the `sleep` task, within its read timeout for a `scrape`.
"""

from __future__ import annotations

import ctypes
import functools
import heapq
import itertools
import threading
import time

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


@functools.lru_cache(maxsize=256)  # one class per (exception, message): a timeout's is made once, not per job
def exception_with(base: type[BaseException], message: str) -> type[BaseException]:
    """A subclass of `base` whose instances carry `message`: an asynchronous exception is raised from
    its class alone. It prints as `base` does (same module and name), so stored tracebacks read the same."""

    def init(self: BaseException, *args: object) -> None:
        base.__init__(self, message)

    namespace = {"__init__": init, "__module__": base.__module__, "__qualname__": base.__qualname__}
    return type(base.__name__, (base,), namespace)


def _raise_in(ident: int, exc: type[BaseException]) -> None:
    # Never with NULL to withdraw one: CPython (3.11) would leave its eval breaker set for good, which
    # slows every thread of the process (a third, measured) until some asynchronous exception lands.
    _set_async_exc(ident, ctypes.py_object(exc))


def _land_here() -> None:
    """Run a few bytecodes, so that an asynchronous exception pending for this thread is raised now."""
    for _ in range(3):
        pass


class TaskWindows:
    """Which job's task runs in which thread now, and the stops waiting for a task to begin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, int] = {}  # job id -> ident of the thread running its task
        self._pending: dict[str, type[BaseException]] = {}  # job id -> stop asked for before its task began
        self._sent: dict[str, type[BaseException]] = {}  # job id -> exception sent into its open window

    def enter(self, job_id: str) -> None:
        """Open `job_id`'s window in this thread; raise the stop already asked for, if any."""
        with self._lock:
            pending = self._pending.pop(job_id, None)
            if pending is None:
                self._threads[job_id] = threading.get_ident()
        if pending is not None:
            raise pending()

    def leave(self, job_id: str) -> None:
        """Close the window (always, from the thread that opened it). An exception sent into it that has not
        landed yet (the task ended first) is made to land here, and swallowed: never after the window."""
        while True:
            try:
                with self._lock:
                    self._threads.pop(job_id, None)
                    sent = self._sent.pop(job_id, None)
                if sent is not None:
                    _raise_in(threading.get_ident(), sent)  # replaces any still pending, and lands at once
                    _land_here()
                return
            except BaseException:  # noqa: BLE001 - delivered while closing: the task ended first
                continue

    def interrupt(self, job_id: str, exc: type[BaseException], *, early: bool = False) -> bool:
        """Raise `exc` in the thread running `job_id`'s task. True if it was sent; with `early`, a job
        whose task has not begun gets it as it begins (False is returned then too)."""
        with self._lock:
            ident = self._threads.get(job_id)
            if ident is None:
                if early:
                    self._pending[job_id] = exc
                return False
            self._sent[job_id] = exc
            _raise_in(ident, exc)
            return True

    def nudge(self) -> None:
        """Send again what was sent into windows still open. CPython keeps one "an asynchronous exception is
        pending" flag for all threads, cleared when any one lands: the others could wait for an unrelated
        wake-up (a sleeping task, with no other thread wanting the GIL, would not get its stop)."""
        with self._lock:
            for job_id, exc in self._sent.items():
                _raise_in(self._threads[job_id], exc)

    def outstanding(self) -> bool:
        """Whether an exception sent into a window has not been seen to land (its window is still open)."""
        with self._lock:
            return bool(self._sent)

    def forget(self, job_id: str) -> None:
        """The job's run is over: drop a stop that never found its task."""
        with self._lock:
            self._pending.pop(job_id, None)

    def running(self) -> list[str]:
        """The jobs whose task code runs now."""
        with self._lock:
            return list(self._threads)


#: While an exception sent into a task has not landed, it is sent again this often (see `TaskWindows.nudge`).
NUDGE_S = 0.2


class Watchdog:
    """One daemon thread that interrupts tasks at their deadlines (a timer thread per job would cost a
    thread start each) and nudges interrupts until they land. `arm` returns a handle for `disarm`; a
    deadline disarmed in time does nothing."""

    #: Disarmed entries stay in the heap until this many have gathered and they are half of it, then go.
    COMPACT_AFTER = 64

    def __init__(self, windows: TaskWindows) -> None:
        self._windows = windows
        self._wake = threading.Condition()
        self._heap: list[list] = []  # [monotonic deadline, sequence, job id, exception class or None]
        self._sequence = itertools.count()
        self._disarmed = 0
        self._nudged = 0.0  # when outstanding interrupts were last sent
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, job_id: str, exc: type[BaseException]) -> list:
        entry = [time.monotonic() + seconds, next(self._sequence), job_id, exc]
        with self._wake:
            heapq.heappush(self._heap, entry)
            self._ensure_thread()
            if self._heap[0] is entry:
                self._wake.notify()
        return entry

    def disarm(self, entry: list) -> None:
        with self._wake:
            if entry[3] is None:
                return
            entry[3] = None
            self._disarmed += 1
            if self._disarmed > self.COMPACT_AFTER and self._disarmed * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[3] is not None]
                heapq.heapify(self._heap)
                self._disarmed = 0

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][3] is None or self._heap[0][0] > time.monotonic():
                    if self._heap and self._heap[0][3] is None:
                        heapq.heappop(self._heap)
                        self._disarmed -= 1
                        continue
                    now = time.monotonic()
                    wait = self._heap[0][0] - now if self._heap else None
                    if self._windows.outstanding():  # sent earlier, not landed yet: again, every NUDGE_S
                        if now >= self._nudged + NUDGE_S:
                            self._windows.nudge()
                            self._nudged = now
                        due = self._nudged + NUDGE_S - now
                        wait = due if wait is None else min(wait, due)
                    self._wake.wait(wait)
                _, _, job_id, exc = heapq.heappop(self._heap)
            if self._windows.interrupt(job_id, exc):
                self.wake()

    def wake(self) -> None:
        """An interrupt was just sent: nudge it from NUDGE_S on, until it lands."""
        with self._wake:
            self._nudged = time.monotonic()
            self._ensure_thread()
            self._wake.notify()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="job deadlines", daemon=True)
            self._thread.start()


#: This process's task windows (one worker per process), and the deadlines that interrupt them.
WINDOWS = TaskWindows()
DEADLINES = Watchdog(WINDOWS)
