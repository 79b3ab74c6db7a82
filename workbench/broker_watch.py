"""Noticing that the broker restarted: its run id changes, and jobs it held may be gone.

A broker without persistence loses every queued and finished job when it restarts, and RQ
says nothing. The consoles keep a `BrokerWatch` and report such a restart in one sentence.

A failover changes the run id too (another server answers), but nothing was restarted: the
promoted replica continues the old primary's replication history (its `master_replid2` is the
old primary's `master_replid`), so it is told apart and reported as a failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from rq import Queue

from .broker import server_address
from .jobs import SERIALIZER
from .known_queues import all_queues
from .sentinel_url import primary_address


@dataclass(frozen=True)
class Restart:
    """The broker came back as a different process; `lost_jobs` were known before and are gone.

    With `failover`, a replica was promoted instead (`now_at` says where): the jobs are the ones it copied.
    """

    old_run_id: str
    new_run_id: str
    lost_jobs: int
    failover: bool = False
    now_at: str = ""

    def sentence(self) -> str:
        if self.failover:
            return f"the broker failed over: the replica at {self.now_at} is the primary now; carrying on there."
        lost = (
            f"{self.lost_jobs:,} queued or running job(s) it held before are gone" if self.lost_jobs else "no jobs lost"
        )
        return f"the broker restarted (run id {self.old_run_id[:8]} → {self.new_run_id[:8]}); {lost}."


def run_id(connection: Redis) -> str:
    return str(connection.info("server")["run_id"])


def identity(connection: Redis) -> tuple[str, str, str]:
    """(run id, replication id, previous replication id): which server answers, and whose history it continues."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.info("server")
        pipe.info("replication")
        server, replication = pipe.execute()
    return str(server["run_id"]), str(replication.get("master_replid", "")), str(replication.get("master_replid2", ""))


def job_census(connection: Redis, queue_names: Sequence[str] | None = None) -> int:
    """Jobs waiting or running on `queue_names` (every queue if None): what a restart without persistence would lose.

    Counting only, in one round trip: RQ's `registry.count` would also run an unlocked abandoned-job
    cleanup, which is the janitor's job (under RQ's maintenance lock), not a periodic side effect of a
    census. A consumer counts only its own queues, so its cost does not grow with the broker's.
    """
    if queue_names is None:
        queues = all_queues(connection, serializer=SERIALIZER)
    else:
        queues = [Queue(name, connection=connection, serializer=SERIALIZER) for name in queue_names]
    if not queues:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.zcard(queue.started_job_registry.key)
        counts = pipe.execute(raise_on_error=False)
    return sum(count for count in counts if isinstance(count, int))  # a key of the wrong type counts nothing


class BrokerWatch:
    """Call `check()` now and then; it returns a Restart once when the broker's run id changes."""

    def __init__(self, connection: Redis, queue_names: Sequence[str] | None = None) -> None:
        self.connection = connection
        self.queue_names = list(queue_names) if queue_names is not None else None
        self._run_id, self._replid, _ = identity(connection)
        self._census = job_census(connection, self.queue_names)

    def check(self) -> Restart | None:
        """Raise redis.ConnectionError while the broker is down; return a Restart when it changed."""
        current, replid, previous = identity(self.connection)
        census = job_census(self.connection, self.queue_names)
        if current == self._run_id:
            self._replid, self._census = replid, census
            return None
        if self._replid and previous == self._replid:
            where = primary_address(self.connection) or server_address(self.connection)
            restart = Restart(self._run_id, current, 0, failover=True, now_at=where)
        else:
            restart = Restart(self._run_id, current, max(self._census - census, 0))
        self._run_id, self._replid, self._census = current, replid, census
        return restart
