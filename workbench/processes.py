"""Background processes the workbench starts itself, tracked by pidfile and stopped by pid."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: prctl(2) option: the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: int, exit_code: int = 0) -> None:
    """In a child just forked: have the kernel send `sig` when `parent_pid` dies (Linux); exit if it has already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: nothing ties the child to its parent
    if os.getppid() != parent_pid:
        os._exit(exit_code)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie child counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in `pidfile` if that process still runs."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start_background(command: Sequence[str], pidfile: Path, logfile: Path, env: Mapping[str, str], cwd: Path) -> int:
    """Start `command` in its own session (so Ctrl-C in this terminal leaves it alone)."""
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(f"{process.pid}\n")
    return process.pid


def stop(pid: int, signals: Sequence[tuple[signal.Signals, float]]) -> bool:
    """Send each signal in turn, waiting up to its seconds for `pid` to exit; return whether it did."""
    for sig, wait_s in signals:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.05)
    return not alive(pid)
