"""The producer's schedules: `--in`/`--at` (a delayed batch), `--every`/`--cron` (a periodic one),
`--schedules` (list) and `--unschedule NAME`. The consumers fire them (`workbench.schedules`)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from redis import Redis

from .. import defaults, schedules, validators
from ..errors import UsageError
from ..producer import Batch, listening_workers
from .common import out_console, say
from .producer_view import check_durable, local_time, schedules_table


def when_from_flags(in_: str | None, at: str | None) -> datetime | None:
    """`--in 10m` or `--at 2026-12-24T18:00` as a UTC moment; None for "now"."""
    if in_ is not None and at is not None:
        raise UsageError("--in and --at both say when; give one.")
    now = datetime.now(UTC)
    if in_ is not None:
        return now + timedelta(seconds=validators.duration(in_, "--in", 1, defaults.MAX_DELAY_S))
    if at is not None:
        return validators.moment(at, "--at", now, defaults.MAX_DELAY_S)
    return None


def when_answer(raw: str) -> datetime:
    """The menu's "later" answer: a duration (`10m`) or a moment (`2026-12-24T18:00`)."""
    text = raw.strip()
    if "-" in text or ":" in text:
        return validators.moment(text, "the time", datetime.now(UTC), defaults.MAX_DELAY_S)
    return datetime.now(UTC) + timedelta(seconds=validators.duration(text, "the delay", 1, defaults.MAX_DELAY_S))


def repeat_from_flags(every: str | None, cron: str | None) -> tuple[int | None, str | None]:
    """`--every 10m` or `--cron "*/5 * * * *"` as (seconds, cron line); (None, None) when neither."""
    if every is not None and cron is not None:
        raise UsageError("--every and --cron both say how often; give one.")
    if every is not None:
        return validators.duration(every, "--every", defaults.MIN_EVERY_S, defaults.MAX_EVERY_S), None
    if cron is not None:
        return None, validators.cron_expression(cron)
    return None, None


def repeat_answer(raw: str) -> tuple[int | None, str | None]:
    """The menu's "repeatedly" answer: a duration (`10m`) or a five-field cron line."""
    text = raw.strip()
    if len(text.split()) == 5:
        return None, validators.cron_expression(text)
    return validators.duration(text, "the period", defaults.MIN_EVERY_S, defaults.MAX_EVERY_S), None


def make_schedule(batch: Batch, name: str | None, every_s: int | None, cron: str | None) -> schedules.Schedule:
    return schedules.Schedule(
        name=validators.schedule_name(name if name else batch.spec.name),
        task=batch.spec.name,
        params=dict(batch.params),
        queue=batch.queue,
        count=batch.count,
        timeout_s=batch.timeout_s,
        retries=batch.retries,
        retry_intervals=batch.retry_intervals,
        every_s=every_s,
        cron=cron,
    )


def register(connection: Redis, schedule: schedules.Schedule, *, as_json: bool) -> None:
    """Store the schedule and say when it first fires and who will fire it."""
    confirmation = schedules.add(connection, schedule)
    if as_json:
        print(json.dumps(schedule.as_dict()), flush=True)
        check_durable(confirmation, f"schedule {schedule.name}")
        return
    following = schedules.next_run(schedule)
    first = (
        f"next at {local_time(following.isoformat())}" if following else "first run as soon as a consumer picks it up"
    )
    say(
        f"Schedule {schedule.name}: {schedule.count:,} × {schedule.task} {schedule.repeats} on {schedule.queue}; "
        f"{first}. Remove it with: python producer_main.py --unschedule {schedule.name}"
    )
    check_durable(confirmation, f"schedule {schedule.name}")
    if schedules.lease_holder(connection) is None:
        say(
            ("warning: ", "yellow"),
            "no consumer runs a scheduler right now; it fires once one is running: "
            f"python consumer_main.py --workers 4 --queue {schedule.queue}",
        )
    elif listening_workers(connection, schedule.queue) == 0:
        say(("warning: ", "yellow"), f"no worker listens on {schedule.queue}; its batches will wait there.")


def schedule_rows(connection: Redis) -> list[dict]:
    found, unreadable = schedules.load_all(connection)
    rows = []
    for schedule in found:
        row = schedule.as_dict()
        row["next_run_shown"] = local_time(row["next_run"]) if row["next_run"] else "as soon as a consumer runs"
        rows.append(row)
    for name in unreadable:
        say(("warning: ", "yellow"), f"the schedule record {name!r} cannot be read; remove it with --unschedule.")
    return rows


def list_schedules(connection: Redis, *, as_json: bool) -> None:
    rows = schedule_rows(connection)
    if as_json:
        sys.stdout.write(
            "".join(json.dumps({k: v for k, v in row.items() if k != "next_run_shown"}) + "\n" for row in rows)
        )
        sys.stdout.flush()
        return
    if not rows:
        say("No schedules. Add one with --task NAME --every 10m (or --cron '*/5 * * * *').")
        return
    out_console.print(schedules_table(rows))
    holder = schedules.lease_holder(connection)
    say(
        f"Fired by the consumer scheduler {holder}." if holder else "No consumer runs a scheduler right now.",
        style="dim",
    )


def unschedule(connection: Redis, raw_name: str) -> None:
    try:
        name = validators.schedule_name(raw_name)
    except UsageError:
        if not schedules.stored(connection, raw_name):
            raise
        name = raw_name  # a record stored under a name the producer would refuse (forged): still removable
    schedules.remove(connection, name)
    say(f"Removed the schedule {name}; batches it already enqueued are not touched.")
