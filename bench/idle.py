"""What an idle fleet costs the broker: commands per second with nothing to do (INFO commandstats).

Each consumer (ours: `consumer_main.py --workers 1`; plain RQ: one `rq worker`) serves one queue;
the broker also knows other queues, each with a job nobody serves. The workbench's idle traffic must
depend only on each consumer's own workers and queues: the same with 100 queues as with 1.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Worker

from .sides import SLEEP, START_TIMEOUT_S, BenchError, Side, Workers

if TYPE_CHECKING:
    from .rows import Context  # (rows imports this module: the experiment's context is a type here only)

#: After the last worker registered: start-up maintenance and the janitor's first broker-wide scan pass.
SETTLE_S = 2.0
QUEUES = (1, 100)


def total_calls(conn: Redis) -> int:
    """Every command the broker has executed so far (INFO commandstats)."""
    return sum(int(stats["calls"]) for stats in conn.info("commandstats").values())


def idle_cost(ctx: Context, side: Side) -> dict[str, float]:
    """Idle broker commands/s for 1 and `sizes.idle_fleet` (10) consumers with 1 and 100 queues in the broker."""
    figures: dict[str, float] = {}
    fleet = {"one": 1, "fleet": ctx.sizes.idle_fleet}
    for queues in QUEUES:
        served = ctx.queue(f"idle{queues}", side)
        others = [f"{served}-other{i}" for i in range(queues - 1)]
        for name in others:  # known to the broker (rq:queues), with a job nobody serves
            side.batch(ctx.conn, name, SLEEP, [{"seconds": 0}])
        for label, consumers in fleet.items():
            groups = [side.start(ctx.url, served, 1, ctx.logdir, ctx.env, burst=False) for _ in range(consumers)]
            try:
                _wait_registered(ctx.conn, served, consumers, groups)
                time.sleep(min(SETTLE_S, ctx.sizes.idle_window_s))
                before, started = total_calls(ctx.conn), time.monotonic()
                time.sleep(ctx.sizes.idle_window_s)
                after, elapsed = total_calls(ctx.conn), time.monotonic() - started
            finally:
                for group in groups:
                    group.close()
            figures[f"idle_{label}_{queues}"] = max(after - before - 1, 0) / elapsed  # less our own INFO
    low, high = figures["idle_fleet_1"], figures["idle_fleet_100"]
    figures["idle_flat"] = high / low if low > 0.05 else 1.0 + high  # nothing at all idles flat too
    return figures


def _wait_registered(conn: Redis, queue: str, count: int, groups: list[Workers]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    probe = Queue(queue, connection=conn)
    while Worker.count(connection=conn, queue=probe) < count:
        if any(p.poll() is not None for group in groups for p in group.processes):
            raise BenchError(f"a {groups[0].side} worker process exited while starting; see {groups[0].log}.")
        if time.monotonic() > deadline:
            raise BenchError(f"{groups[0].side} workers did not register within {START_TIMEOUT_S:.0f} s.")
        time.sleep(0.05)
