"""Read-only views of the broker's queues, for menus and live views."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from .control import list_workers
from .jobs import SERIALIZER
from .known_queues import queue_names
from .producer import broker_errors


def queue_sizes(connection: Redis) -> list[tuple[str, int, int]]:
    """(name, queued jobs, listening workers) for every known queue, by name.

    Known means: a queue RQ has recorded (something was enqueued there) or one a worker listens on.
    A worker whose record cannot be read listens on no queue here (`control.list_workers`).
    """
    with broker_errors(connection, "listing the queues"):
        workers = list_workers(connection)
        names = set(queue_names(connection))
        names.update(name for worker in workers for name in worker.queues)
        rows = []
        for name in sorted(names):
            listening = sum(1 for worker in workers if name in worker.queues)
            rows.append((name, Queue(name, connection=connection, serializer=SERIALIZER).count, listening))
        return rows
