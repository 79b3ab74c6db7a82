"""Writing a run's start records only for runs that last: most jobs end before anyone could look.

RQ writes a run's start (its execution record, the started registry's entry, the worker's busy
state, the job's `started_at`) in two transactions before the job runs, and removes it all again
in the finishing one: a third of a short job's broker commands. Here the start is written by this
thread once a run has lasted `delay` seconds; a run that ends sooner never had one written, and its
end records what RQ's would (status, `started_at`, `ended_at`, result, registries) in one write.
Observers of a run that lasts see RQ's usual records (started registry, execution, the worker's
current job) from `delay` after its start on.

The job is claimed (status `started`, its worker's name, its run generation; `workbench.fencing`)
and kept in the queue's intermediate list from the moment it is taken, so a worker that dies in
that window leaves it where the janitor finds it (`workbench.recovery.abandon_worker`).

`begin(key, run)` when a run starts; `settle(key)` when it ends: True if the start was written
(then its records are removed with the end, as RQ does), False if it never will be. Waking
costs at most one wake-up per `delay` while runs go on back to back, and none while idle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class DeferredStarts(threading.Thread):
    """Daemon thread calling `write(run)` for each run that has not settled `delay` seconds after `begin`."""

    def __init__(self, delay: float, write: Callable[[Any], bool], name: str = "deferred starts") -> None:
        super().__init__(name=name, daemon=True)
        self.delay = delay
        self._write = write
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[float, Any]] = {}
        self._written: set[str] = set()
        self._writing: str | None = None
        self._idle = False
        self._stopped = False

    def begin(self, key: str, run: Any) -> None:
        """A run starts now: write its start in `delay` seconds unless it settles first."""
        with self._cond:
            self._pending[key] = (time.monotonic() + self.delay, run)
            if self._idle:
                self._cond.notify()

    def settle(self, key: str) -> bool:
        """The run ends: True if its start was written (waits for a write under way), False if never."""
        with self._cond:
            if self._pending.pop(key, None) is not None:
                return False
            while self._writing == key:
                self._cond.wait()
            if key in self._written:
                self._written.discard(key)
                return True
            return False

    def run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._pending:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                key, (due, run) = min(self._pending.items(), key=lambda item: item[1][0])
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                del self._pending[key]
                self._writing = key
                self._cond.release()
                try:
                    self._finish_write(key, run)
                finally:
                    self._cond.acquire()  # (the write logs its own failures; the run's end does not need it)

    def _finish_write(self, key: str, run: Any) -> bool:
        written = False
        try:
            written = bool(self._write(run))
        except Exception:  # noqa: BLE001 - `write` logs; a start not written only means RQ's finishing path
            written = False
        finally:
            with self._cond:
                self._writing = None
                if written:
                    self._written.add(key)
                self._cond.notify_all()
        return written

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
