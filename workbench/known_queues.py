"""The queues RQ has recorded (its `rq:queues` set), read so that a forged member is skipped, not fatal.

RQ's `Queue.all` turns every member of the set into a queue and raises on one that is not a queue
key (`ValueError`) or not UTF-8 (`UnicodeDecodeError`): one stray member written by anything with
broker access took down every dashboard page listing queues, the depth sampler, search, /metrics
and the consumer's janitor. Every reader of the queue list goes through `all_queues` instead.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue

_PREFIX = Queue.redis_queue_namespace_prefix


def queue_names(connection: Redis) -> list[str]:
    """The names of the recorded queues, sorted; members that are no queue key are left out."""
    names = set()
    for member in connection.smembers(Queue.redis_queues_keys):
        try:
            key = member.decode() if isinstance(member, bytes) else str(member)
        except UnicodeDecodeError:
            continue
        if key.startswith(_PREFIX) and len(key) > len(_PREFIX):
            names.add(key[len(_PREFIX) :])
    return sorted(names)


def all_queues(connection: Redis, **options: Any) -> list[Queue]:
    """`Queue.all(connection, **options)` without the forged members, sorted by name."""
    return [Queue(name, connection=connection, **options) for name in queue_names(connection)]
