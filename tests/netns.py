"""Hosts as Linux network namespaces: one per host, each with its own address on a bridge of its own.

    lan = Lan()                                   # names unique to this run; deleted by lan.close()
    broker = lan.host("broker", "192.0.2.11")
    process = lan.spawn(broker, [sys.executable, "broker_main.py", ...], env)
    lan.cut(broker) / lan.restore(broker)         # the host's link down / up

Only 192.0.2.0/24 (a documentation range), only inside namespaces created here: the bridge lives in
a namespace of its own, so nothing is routed to or from the machine's own network. The namespaces
share the file system and the PID space with the machine (marker files and pids work across hosts).
`unavailable()` says why these tests cannot run here (not root, no `ip`, no namespaces), or None.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass

from .supervision_support import Output

PREFIX = "wbh"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str  # the namespace's name
    address: str
    link: str  # the host's end of its veth pair, inside the host namespace ("eth0")


class Lan:
    """A bridge in its own namespace and hosts joined to it; everything is removed by `close()`."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 100000:05d}{uuid.uuid4().hex[:3]}"
        self.bridge_ns = f"{PREFIX}{self.tag}lan"
        self.hosts: list[Host] = []
        self.processes: list[subprocess.Popen] = []
        self._namespaces: list[str] = []
        atexit.register(self.close)
        self._add_namespace(self.bridge_ns)
        self._in(self.bridge_ns, "link", "add", "br0", "type", "bridge")
        self._in(self.bridge_ns, "link", "set", "br0", "up")

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        self._in(name, "link", "set", "lo", "up")

    def _in(self, namespace: str, *args: str) -> None:
        _ip("-n", namespace, *args)

    def host(self, label: str, address: str) -> Host:
        """A new host `label` at `address` (from 192.0.2.0/24), linked to the bridge."""
        if not address.startswith("192.0.2."):
            raise ValueError("test hosts use 192.0.2.0/24 only")
        name = f"{PREFIX}{self.tag}{label}"
        self._add_namespace(name)
        outer = f"v{self.tag}{len(self.hosts)}"[:15]  # the bridge's end of the veth pair
        _ip("link", "add", outer, "netns", self.bridge_ns, "type", "veth", "peer", "name", "eth0", "netns", name)
        self._in(self.bridge_ns, "link", "set", outer, "master", "br0", "up")
        self._in(name, "addr", "add", f"{address}/24", "dev", "eth0")
        self._in(name, "link", "set", "eth0", "up")
        host = Host(name, address, "eth0")
        self.hosts.append(host)
        return host

    def spawn(self, host: Host, argv: list[str], env: dict[str, str], **options) -> subprocess.Popen:
        """Run `argv` on `host` (ip netns exec), in a session of its own; stopped by `close()` if still running."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.name, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **options,
        )
        self.processes.append(process)
        return process

    def run(self, host: Host, argv: list[str], env: dict[str, str], timeout: float = 60, **options):
        """Run `argv` on `host` to completion; the CompletedProcess (text, output captured)."""
        return subprocess.run(
            ["ip", "netns", "exec", host.name, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **options,
        )

    def cut(self, host: Host) -> None:
        """Pull the host's cable: its link goes down, its processes keep running."""
        self._in(host.name, "link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        self._in(host.name, "link", "set", host.link, "up")

    def close(self) -> None:
        """Stop what runs in the namespaces (by pid) and delete them; safe to call twice."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in reversed(self._namespaces):
            listed = _ip("netns", "pids", name, check=False)
            for pid in listed.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", name, check=False)
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._namespaces.clear()
        self.processes.clear()


class Reader(Output):
    """A host process's merged output (the consumers' `Output`), waited on longer: hosts start slower."""

    def wait_for(self, fragment: str, timeout: float = 30) -> str:
        return super().wait_for(fragment, timeout)
