"""Broker commands per no-op job, from the broker's own count (INFO commandstats), both sides.

One idle worker; a baseline of its idle traffic is counted first, then N no-op jobs are queued and
run. Figure: (every command the broker executed while they ran, less the bench's own polling and
the idle baseline for that time) / N. Commands a script runs count one each, like any other.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from redis import Redis

from .sides import SLEEP, Side, wait_registered

if TYPE_CHECKING:
    from .rows import Context  # (rows imports this module: the experiment's context is a type here only)

#: The idle baseline is counted this long (after RQ's start-up maintenance has passed).
BASELINE_S = 1.0
SETTLE_S = 1.0
POLL_S = 0.02


def total_calls(conn: Redis) -> int:
    return sum(int(stats["calls"]) for stats in conn.info("commandstats").values())


def commands_per_job(ctx: Context, side: Side) -> dict[str, float]:
    queue, count = ctx.queue("commands", side), ctx.sizes.command_jobs
    group = side.start(ctx.url, queue, 1, ctx.logdir, ctx.env, burst=False)
    try:
        wait_registered(ctx.conn, queue, 1, group)
        window = min(BASELINE_S, ctx.sizes.idle_window_s)  # (shorter in a smoke run)
        time.sleep(min(SETTLE_S, ctx.sizes.idle_window_s))
        before = total_calls(ctx.conn)
        time.sleep(window)
        idle_rate = max(total_calls(ctx.conn) - before - 1, 0) / window  # less our own INFO
        side.batch(ctx.conn, queue, SLEEP, [{"seconds": 0}] * count)
        finished_key = f"rq:finished:{queue}"
        start, started = total_calls(ctx.conn), time.monotonic()
        polls = 0
        while ctx.conn.zcard(finished_key) < count:
            polls += 1
            if time.monotonic() - started > 60 + count / 5:
                break
            time.sleep(POLL_S)
        elapsed = time.monotonic() - started
        spent = total_calls(ctx.conn) - start - polls - 1 - 1  # less our ZCARDs and the two INFOs
    finally:
        group.close()
    return {"cmds_per_job": max(spent - idle_rate * elapsed, 0) / count}
