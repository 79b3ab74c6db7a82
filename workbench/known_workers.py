"""The workers RQ has registered (its `rq:workers` set, and `rq:workers:<queue>` per queue), read so that
a forged set is one problem said, not an error.

RQ's `worker_registration.get_keys` (behind `Worker.all` and `Worker.count`) raises when the set's
key holds another type (WRONGTYPE) or a member is not UTF-8: anything with broker access could take
down the dashboard's worker page and /metrics, list_workers/kill_workers, and the producer's "does a
worker listen on this queue" check (after its jobs were queued). Every reader goes through
`worker_keys` instead: the keys it could read, and a sentence for what it could not.
"""

from __future__ import annotations

from typing import NamedTuple

from redis import Redis, ResponseError
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

from .broker import wrong_type


class Registered(NamedTuple):
    """The registered worker keys, sorted, and why some could not be read ("" when all could)."""

    keys: list[str]
    problem: str


def registry_key(queue_name: str | None = None) -> str:
    """RQ's set of all worker keys, or of the workers listening on `queue_name`."""
    return REDIS_WORKER_KEYS if queue_name is None else WORKERS_BY_QUEUE_KEY % queue_name


def worker_keys(connection: Redis, queue_name: str | None = None) -> Registered:
    """The worker keys RQ registered (on `queue_name`, or all): a set of another type reads as none, with
    the problem said; a member that is not text is left out and counted in the problem."""
    key = registry_key(queue_name)
    try:
        members = connection.smembers(key)
    except ResponseError as exc:
        if not wrong_type(exc):
            raise
        return Registered([], f"RQ's worker registry {key} holds another type than a set (forged?)")
    keys, bad = set(), 0
    for member in members:
        try:
            keys.add(member.decode() if isinstance(member, bytes) else str(member))
        except UnicodeDecodeError:
            bad += 1
    problem = f"{bad:,} member(s) of RQ's worker registry {key} are not text (left out)" if bad else ""
    return Registered(sorted(keys), problem)
