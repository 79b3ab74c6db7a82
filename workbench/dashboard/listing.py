"""Which job ids a list shows: page parameters checked, registries read a page at a time.

Every read here is a page: LRANGE / ZRANGE with offsets (O(log n + page)), counts with
LLEN / ZCARD. No registry cleanup runs on a read: recovering abandoned jobs is the consumers'
janitor's job, and a dashboard page view must not change what it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil

from flask import url_for
from redis import Redis, ResponseError
from rq import Queue
from rq.registry import BaseRegistry
from rq_dashboard.web import pagination_window

from .. import defaults
from ..broker import wrong_type
from ..jobs import make_queue

#: Registry names the dashboard's URLs use, and how to get each from a queue.
REGISTRIES: dict[str, Callable[[Queue], BaseRegistry]] = {
    "failed": lambda q: q.failed_job_registry,
    "deferred": lambda q: q.deferred_job_registry,
    "started": lambda q: q.started_job_registry,
    "finished": lambda q: q.finished_job_registry,
    "scheduled": lambda q: q.scheduled_job_registry,
    "canceled": lambda q: q.canceled_job_registry,
}
LIST_NAMES = ("queued", *REGISTRIES)
ORDERS = ("asc", "dsc")


#: A count the broker could not give: the key holds another type than RQ writes (forged, or another program's).
UNREADABLE_COUNT = "unreadable"


def list_sizes(connection: Redis, queues: list[Queue]) -> list[dict[str, int | str]]:
    """Per queue, the size of each of its lists (`LIST_NAMES`), in one round trip.

    A list whose key holds another type (WRONGTYPE) counts as UNREADABLE_COUNT: one forged key is
    one unreadable figure, not a page (or /metrics, or search) that fails for every queue.
    """
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            for make in REGISTRIES.values():
                pipe.zcard(make(queue).key)
        replies = iter(pipe.execute(raise_on_error=False) if queues else [])
    return [
        {name: UNREADABLE_COUNT if isinstance(size := next(replies), Exception) else int(size) for name in LIST_NAMES}
        for _ in queues
    ]


class BadInput(Exception):
    """Raised when a request's parameter is malformed; the message is one sentence for the reader."""


def whole(raw: object, name: str, maximum: int | None = None) -> int:
    """A whole number >= 1 (and <= maximum) from a URL part, else BadInput with one sentence."""
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise BadInput(f"{name} must be a whole number of at least 1, not {text[:40]!r}.")
    value = int(text)
    if maximum is not None and value > maximum:
        raise BadInput(f"{name} must be at most {maximum}, not {value}.")
    return value


def page_request(per_page: object, page: object, order: object = "asc") -> tuple[int, int, str]:
    """(per_page, page, order) checked: 400-worthy BadInput for zero, negative or non-numeric values."""
    size = whole(per_page, "the page size", defaults.DASHBOARD_MAX_PER_PAGE)
    number = whole(page, "the page number")
    if order not in ORDERS:
        raise BadInput(f"the sort order must be asc or dsc, not {str(order)[:40]!r}.")
    return size, number, str(order)


def registry_name(name: str) -> str:
    if name not in LIST_NAMES:
        raise BadInput(f"there is no job list called {name[:40]!r}; choose one of {', '.join(LIST_NAMES)}.")
    return name


def page_of_ids(
    connection: Redis, queue_name: str, name: str, per_page: int, page: int, order: str
) -> tuple[int | str, list[str]]:
    """(jobs in the list, the ids on this page) for a queue's list `name`, oldest first for asc.

    A list whose key holds another type (forged) is (UNREADABLE_COUNT, []): said on its page, not a 503.
    """
    try:
        return _page_of_ids(connection, queue_name, name, per_page, page, order)
    except ResponseError as exc:
        if not wrong_type(exc):
            raise
        return UNREADABLE_COUNT, []


def _page_of_ids(
    connection: Redis, queue_name: str, name: str, per_page: int, page: int, order: str
) -> tuple[int, list[str]]:
    queue = make_queue(queue_name, connection)
    offset = (page - 1) * per_page
    desc = order == "dsc"
    if name == "queued":
        total = queue.count
        if desc:
            end = total - offset  # exclusive
            start = max(0, end - per_page)
            return total, list(reversed(queue.get_job_ids(start, end - start))) if end > 0 else []
        return total, queue.get_job_ids(offset, per_page)
    registry = REGISTRIES[name](queue)
    ids = registry.get_job_ids(offset, offset + per_page - 1, desc=desc, cleanup=False)
    return registry.get_job_count(cleanup=False), list(dict.fromkeys(ids))


def pagination(instance: int, queue: str, name: str, per_page: int, page: int, order: str, total: int) -> dict:
    """rq-dashboard's pagination block, links to the list view of each page."""

    def link(number: int) -> dict:
        return {
            "url": url_for(
                "rq_dashboard.jobs_overview",
                instance_number=instance,
                queue_name=queue,
                registry_name=name,
                per_page=per_page,
                order=order,
                page=number,
            )
        }

    last = int(ceil(total / float(per_page)))
    block = {
        "current_page": page,
        "num_pages": last,
        "pages_in_window": [{"number": p, **link(p)} for p in pagination_window(total, page, per_page)],
        "first_page": link(1),
        "last_page": link(last),
    }
    if page > 1:
        block["prev_page"] = link(page - 1)
    if page < last:
        block["next_page"] = link(page + 1)
    return block
