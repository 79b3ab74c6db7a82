""" "Queued" means on disk, and on a replica where one exists: the broker confirms a write before we say so.

Valkey (and Redis 7.2+) confirm durability with two commands, both sent right after the write on
the SAME connection (they wait for that connection's own last write; inside MULTI/EXEC they would
not wait at all):

- `WAITAOF 1 0 T`: the write is fsynced to the primary's append-only file;
- `WAIT 1 T`: a replica has received it (in its memory, and in its own append-only file within a
  second), so a failover that promotes that replica keeps it.

`transaction(connection)` is a MULTI/EXEC pipeline that does this: after EXEC, on the connection
that carried it, it asks INFO replication (how many replicas are attached) together with WAITAOF,
then WAIT when a replica is attached, and leaves the answer in `pipeline.confirmation`. One batch is
one transaction, so its cost is one fsync and one replica round trip, however many jobs it holds.

A broker without WAITAOF (Redis before 7.2) or without an append-only file gives a weaker guarantee:
the confirmation carries a one-line `warning`, never an error. A confirmation that does not arrive
within the timeout (or a broker lost before it answered) is a `problem`: the write was made, but is
not known to be safe; callers say so instead of pretending.

Workers confirm the start and the end of each run on a replica (`confirm_replicated`), not on disk:
an fsync per job would cost more than the job; a replica is what a failover keeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis
from redis.client import Pipeline
from redis.connection import Connection

from . import defaults, settings


@dataclass(frozen=True)
class Confirmation:
    """What the broker confirmed about a write."""

    #: Fsynced to the primary's append-only file (WAITAOF); False when not asked or not possible.
    on_disk: bool = False
    #: Replicas attached to the primary when the write was confirmed (INFO replication).
    replicas: int = 0
    #: Replicas that acknowledged the write (WAIT).
    on_replicas: int = 0
    #: The broker cannot give the full guarantee (no WAITAOF, no append-only file): one line.
    warning: str | None = None
    #: What was asked did not happen: not confirmed in time, or the broker was lost before it answered.
    problem: str | None = None
    #: How long the confirmation took after EXEC (its round trips, the fsync, the replica's answer).
    seconds: float = 0.0

    @property
    def durable(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """`on disk and on 1 replica` / `on disk` / `accepted by the broker`."""
        where = ["on disk"] if self.on_disk else []
        if self.on_replicas:
            where.append(f"on {self.on_replicas} replica{'s' if self.on_replicas > 1 else ''}")
        return " and ".join(where) or "accepted by the broker"


def confirm_timeout(env: Mapping[str, str] = os.environ) -> float:
    """The producer's confirmation timeout: WORKBENCH_CONFIRM_TIMEOUT_S, else CONFIRM_TIMEOUT_S."""
    return settings.read(defaults.ENV_CONFIRM_TIMEOUT, env)


def _text(reply: Any) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def replicas_in(info: Any) -> int:
    """Attached replicas from an INFO replication reply (parsed by redis-py, or raw text)."""
    if isinstance(info, dict):
        value = info.get("connected_slaves", 0)
    else:
        value = next(
            (line.split(":", 1)[1] for line in _text(info).splitlines() if line.startswith("connected_slaves:")), 0
        )
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


NO_AOF = (
    "the broker keeps no append-only file, so queued jobs are only in its memory (and its replicas'): "
    "a restart loses them"
)


def _weaker(error: redis.ResponseError, connection: redis.connection.Connection) -> str:
    """The one-line warning for a broker that cannot fsync-confirm."""
    text = str(error).lower()
    if "appendonly" in text:
        return NO_AOF
    if "unknown command" in text:
        (info,) = _ask(connection, [("INFO", "persistence")])
        aof = isinstance(info, dict) and info.get("aof_enabled") or "aof_enabled:1" in _text(info)
        if not aof:
            return NO_AOF
        return (
            "this broker has no WAITAOF (it needs Redis 7.2+ or Valkey): queued means accepted and written to "
            "its append-only file, fsynced within a second, not confirmed on disk"
        )
    return f"the broker refused WAITAOF ({error}), so queued means accepted, not confirmed on disk"


def confirm(connection: redis.connection.Connection, timeout_s: float, *, disk: bool = True) -> Confirmation:
    """On `connection`, right after a write: fsynced (WAITAOF) and on a replica if one is attached (WAIT).

    Never raises for a lost broker: the write was made, so the answer is a Confirmation with a problem.
    """
    timeout_ms = max(int(timeout_s * 1000), 1)
    asks: list[tuple[Any, ...]] = [("INFO", "replication")]
    if disk:
        asks.append(("WAITAOF", 1, 0, timeout_ms))
    try:
        replies = _ask(connection, asks)
        replicas = replicas_in(replies[0])
        on_disk, warning, problem = False, None, None
        if disk:
            reply = replies[1]
            if isinstance(reply, redis.ResponseError):
                warning = _weaker(reply, connection)
            elif int(reply[0]) >= 1:
                on_disk = True
            else:
                problem = f"the broker did not confirm within {timeout_s:g} s that it reached its disk"
        on_replicas = 0
        if replicas and problem is None:
            (acks,) = _ask(connection, [("WAIT", 1, timeout_ms)])
            on_replicas = int(acks) if not isinstance(acks, redis.ResponseError) else 0
            if not on_replicas:
                problem = f"no replica confirmed it within {timeout_s:g} s"
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        connection.disconnect()  # half-read replies must not reach the next user of this connection
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        return Confirmation(problem=f"the broker was lost before it confirmed ({reason})")
    return Confirmation(on_disk, replicas, on_replicas, warning, problem)


def _ask(connection: redis.connection.Connection, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send `commands` in one write and read their replies; an error reply is returned, not raised."""
    connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies


class ConfirmedTransaction(Pipeline):
    """A MULTI/EXEC pipeline whose EXEC is followed, on the same connection, by `confirm` (see module)."""

    def __init__(self, client: redis.Redis, timeout_s: float | None = None) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, True, None)
        self.timeout_s = confirm_timeout() if timeout_s is None else timeout_s
        #: Set by execute(): what the broker confirmed about the transaction (None until it ran).
        self.confirmation: Confirmation | None = None

    def __enter__(self) -> ConfirmedTransaction:
        return self

    def _execute_transaction(self, connection: Connection, commands: Any, raise_on_error: bool) -> list:
        response = super()._execute_transaction(connection, commands, raise_on_error)
        started = time.perf_counter()
        confirmation = confirm(connection, self.timeout_s)
        self.confirmation = replace(confirmation, seconds=time.perf_counter() - started)
        return response


def transaction(client: redis.Redis, timeout_s: float | None = None) -> ConfirmedTransaction:
    """A confirmed MULTI/EXEC pipeline on `client` (use as a context manager, like `client.pipeline()`)."""
    return ConfirmedTransaction(client, timeout_s)


# -- workers: the start and the end of a run, on a replica ------------------------------------------
class Replicas:
    """How many replicas the broker has, as a worker last heard (INFO replication, at most every few seconds)."""

    def __init__(self, every_s: float = defaults.REPLICA_CHECK_S) -> None:
        self.every_s = every_s
        self.count = 0
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def heard(self, info: Any) -> None:
        self.count = replicas_in(info)
        self._next = time.monotonic() + self.every_s

    def refresh(self, client: redis.Redis) -> None:
        """Ask the broker (INFO replication) when the last answer is older than `every_s`: one round trip."""
        if self.due():
            try:
                self.heard(client.info("replication"))
            except redis.ResponseError:  # INFO refused (an ACL): no replica is known, none is waited for
                self.heard({})

    def forget(self) -> None:
        """The broker was lost (perhaps a failover): ask again before the next confirmation."""
        self._next = 0.0


def add_replica_confirmation(pipe: Pipeline, replicas: Replicas, timeout_s: float) -> list[str]:
    """Queue WAIT for a replica, after the writes already on a non-transactional `pipe`, when one is
    attached (`replicas`, refreshed first). Returns the names of what was queued, for `read_confirmation`."""
    if not replicas.count:
        return []
    pipe.execute_command("WAIT", 1, max(int(timeout_s * 1000), 1))
    return ["wait"]


def read_confirmation(replies: list[Any], queued: list[str], replicas: Replicas) -> int | None:
    """From the tail of a pipeline's replies: replicas that acknowledged (None when none was asked)."""
    if not queued:
        return None
    reply = replies[-1]
    return int(reply) if isinstance(reply, int) else 0


def confirm_replicated(
    client: redis.Redis, replicas: Replicas, touch: tuple[str, str, str], timeout_s: float
) -> int | None:
    """Confirm on a replica every write made so far (one round trip; None when no replica is attached).

    WAIT counts the writes of its own connection, so a small write goes first on the same connection
    (`touch`: key, field, value; a worker refreshes RQ's own `last_heartbeat`): its replication
    offset is past every earlier write, whichever connection made them.
    """
    replicas.refresh(client)
    if not replicas.count:
        return None
    with client.pipeline(transaction=False) as pipe:
        key, field, value = touch
        pipe.hset(key, field, value)
        queued = add_replica_confirmation(pipe, replicas, timeout_s)
        replies = pipe.execute(raise_on_error=False)
    return read_confirmation(replies, queued, replicas)
