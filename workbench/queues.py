"""Read-only views of the broker's queues, for menus and live views."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.worker import Worker

from .jobs import SERIALIZER


def queue_sizes(connection: Redis) -> list[tuple[str, int, int]]:
    """(name, queued jobs, listening workers) for every queue the broker knows, by name."""
    workers = Worker.all(connection=connection, serializer=SERIALIZER)
    rows = []
    for queue in sorted(Queue.all(connection=connection, serializer=SERIALIZER), key=lambda q: q.name):
        listening = sum(1 for w in workers if queue.name in w.queue_names())
        rows.append((queue.name, queue.count, listening))
    return rows
