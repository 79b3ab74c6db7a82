"""The producer's actions, shared by the flags path and the menu: enqueue a batch and say so, wait
for it, re-attach to it later, list recent batches. Only prints; never prompts."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from redis import Redis

from .. import batches, defaults
from ..broker_watch import BrokerWatch
from ..catalog import TaskSpec
from ..catalog_load import load_catalog
from ..durability import Confirmation
from ..errors import JobsFailed, NotFound, UsageError
from ..fanout import COMBINE_TASK, enqueue_split
from ..producer import Batch, Outcome, broker_errors, enqueue, listening_workers, outcomes, status_counts
from ..requeue import Requeued, requeue_failed
from ..validators import say_duration
from .common import out_console, say
from .producer_view import batches_table, check_durable, local_time, print_fanout, print_results, watch

#: Job states that count as "done" and as "failed" in --batches.
FAILED_STATES = ("failed", "stopped", "canceled", "missing")


def catalog() -> dict[str, TaskSpec]:
    """The tasks a person may pick (internal steps such as the fan-out combiner are left out)."""
    return load_catalog().public()


def all_tasks() -> dict[str, TaskSpec]:
    return dict(load_catalog())


def parse_params(items: list[str]) -> dict[str, str]:
    """`--param KEY=VALUE` flags as a dict; a key given twice is refused rather than guessed."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, not {item!r}.")
        if key in params:
            raise UsageError(f"--param {key} is given twice.")
        params[key] = value
    return params


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while a batch is being enqueued, so it is never left half-reported; re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@dataclass(frozen=True)
class Sent:
    """An enqueued batch: its jobs (chunks first, combiner last for a split) and when it went in."""

    batch: Batch
    split: int
    jobs: list
    enqueued_at: datetime
    at: datetime | None = None
    #: What the broker confirmed about the batch (on disk, on a replica), or None when not asked.
    confirmation: Confirmation | None = None

    @property
    def ids(self) -> list[str]:
        return [job.id for job in self.jobs]


def send(
    connection: Redis,
    batch: Batch,
    split: int = 1,
    *,
    as_json: bool,
    at: datetime | None = None,
    show: int | None = None,
    wait: bool = False,
) -> Sent:
    """Enqueue one batch (a fan-out, or a delayed batch) and say so, its batch id first.

    Ctrl-C waits until the batch is wholly in and reported.
    """
    enqueued_at = datetime.now(UTC)
    with deferred_interrupt():
        if split > 1:
            fan = enqueue_split(connection, batch, split, all_tasks()[COMBINE_TASK])
            jobs, confirmation = fan.jobs, fan.confirmation
        else:
            jobs = enqueue(connection, batch, at=at)
            confirmation = jobs.confirmation
        sent = Sent(batch, split, jobs, enqueued_at, at, confirmation)
        announce(sent, as_json=as_json, show=show, wait=wait)
    check_durable(confirmation, f"batch {batch.batch_id}", [job.id for job in jobs])
    warn_if_unserved(connection, batch.queue)
    return sent


def announce(sent: Sent, *, as_json: bool, show: int | None = None, wait: bool = False) -> None:
    """The batch id first (stderr; with --json the first object on stdout), then the job ids.

    With --json --wait the jobs' objects come once, at the end, with their outcomes.
    """
    batch = sent.batch
    if as_json:
        head = {
            "batch": batch.batch_id,
            "task": batch.spec.name,
            "queue": batch.queue,
            "count": len(sent.jobs),
            "split": sent.split,
            "scheduled_for": sent.at.isoformat() if sent.at else None,
            "durable": sent.confirmation.durable if sent.confirmation else None,
        }
        lines = [head] + [
            {
                "id": job.id,
                "batch": batch.batch_id,
                "queue": batch.queue,
                "task": job.meta.get("task"),
                "params": job.kwargs,
                "status": str(job.get_status(refresh=False).value),
            }
            for job in ([] if wait else sent.jobs)
        ]
        sys.stdout.write("".join(json.dumps(line) + "\n" for line in lines))
        sys.stdout.flush()
        return
    what = f"{batch.spec.name} split into {sent.split} chunks + 1 combining job" if sent.split > 1 else batch.spec.name
    when = ""
    if sent.at is not None:
        ahead = max(round((sent.at - datetime.now(UTC)).total_seconds()), 0)
        when = f" for {local_time(sent.at.isoformat())} (in {say_duration(ahead)})"
    say(f"Batch {batch.batch_id}: enqueued {len(sent.jobs):,} × {what} on {batch.queue}{when}; job ids:")
    sys.stdout.write("".join(f"{job.id}\n" for job in sent.jobs[:show]))
    sys.stdout.flush()
    if show is not None and len(sent.jobs) > show:
        say(f"… and {len(sent.jobs) - show:,} more.")
    say(f"Re-attach from any terminal with: python producer_main.py --batch {batch.batch_id} --wait", style="dim")


def warn_if_unserved(connection: Redis, queue: str) -> None:
    if listening_workers(connection, queue) == 0:
        say(
            ("warning: ", "yellow"),
            f"no worker listens on {queue}; start one with: python consumer_main.py --workers 4 --queue {queue}",
        )


def finish(connection: Redis, sent: Sent, *, as_json: bool, baseline: bool = False, full_ids: bool = False) -> None:
    """Wait for the jobs, show them, and raise JobsFailed if any did not finish."""
    show_outcome(
        connection,
        sent.ids,
        sent.batch.queue,
        sent.at or sent.enqueued_at,  # a delayed batch's clock starts when it is due
        as_json=as_json,
        full_ids=full_ids,
        wait=True,
        split=sent.split,
        baseline_of=sent.batch if baseline else None,
    )


def show_outcome(
    connection: Redis,
    ids: list[str],
    queue: str,
    enqueued_at: datetime,
    *,
    as_json: bool,
    wait: bool,
    full_ids: bool = False,
    split: int = 1,
    baseline_of: Batch | None = None,
) -> None:
    """Optionally wait (live bar), then the results table (or JSON); JobsFailed when waited-for jobs failed."""
    broker = BrokerWatch(connection)
    if wait:
        watch(connection, ids, queue, quiet=as_json)
    rows = outcomes(connection, ids)
    restart = broker.check()
    if restart is not None:
        say(("warning: ", "yellow"), restart.sentence())
        lost = (
            "lost: the replica promoted by the failover never received it"
            if restart.failover
            else "lost: the broker restarted without keeping it"
        )
        rows = [replace(row, error=lost) if row.status == "missing" else row for row in rows]
    wall = wall_time(rows, enqueued_at)
    if as_json:
        sys.stdout.write("".join(json.dumps(row.as_dict(), default=str) + "\n" for row in rows))
        sys.stdout.flush()
    else:
        print_results(rows, wall, all_tasks(), full_ids=full_ids)
        if split > 1:
            one_job = time_one_job(connection, baseline_of) if baseline_of is not None else None
            print_fanout(rows[-1], wall, one_job)
    if wait:
        fail_if_any(rows)


def wall_time(rows: list[Outcome], enqueued_at: datetime) -> float:
    """From enqueueing to the last job's end, by the workers' own clocks."""
    ends = [_utc(row.ended_at) for row in rows if row.ended_at]
    return max((max(ends) - enqueued_at).total_seconds(), 0.0) if ends else 0.0


def _utc(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_one_job(connection: Redis, batch: Batch) -> float | None:
    """Run the whole range as one job on the same queue: the baseline a speed-up is measured against."""
    say("Timing the same range as one job, for comparison ...")
    [job] = enqueue(connection, Batch(batch.spec, batch.params, batch.queue, 1, batch.timeout_s))  # its own batch
    watch(connection, [job.id], batch.queue)
    [row] = outcomes(connection, [job.id])
    return row.duration_s if row.ok else None


def fail_if_any(rows: list[Outcome]) -> None:
    """Raise JobsFailed naming the jobs that did not finish and why (exit 1)."""
    bad = [row for row in rows if not row.ok]
    if not bad:
        return
    named = "; ".join(f"{row.id} {row.status}: {(row.error or '').rstrip('.')}" for row in bad[:5])
    more = f"; and {len(bad) - 5:,} more" if len(bad) > 5 else ""
    raise JobsFailed(f"{len(bad):,} of {len(rows):,} jobs did not finish: {named}{more}.")


def detached(batch_id: str) -> None:
    """Ctrl-C while waiting: the jobs go on; say how to come back to them."""
    say(
        f"\nStopped waiting; batch {batch_id} goes on. Re-attach with: "
        f"python producer_main.py --batch {batch_id} --wait"
    )


# -- batches you can come back to ------------------------------------------------------------
def reattach(
    connection: Redis, batch_id: str, *, wait: bool, as_json: bool, full_ids: bool = False, again: str | None = None
) -> None:
    """`--batch ID`: where the batch stands (progress while waiting), then its results table.

    `again`: "resume" re-queues its failed and stopped jobs first (resumable ones carry on from their
    checkpoints), "restart" does so from zero (`--requeue-failed [--restart]`).
    """
    record = batches.load(connection, batch_id)
    if record is None:
        raise NotFound(f"no batch {batch_id} exists (it may have expired with its results; see --batches).")
    requeued = None
    if again is not None:
        with broker_errors(connection, "re-queueing the batch's failed jobs"):
            requeued = requeue_failed(connection, list(record.job_ids), restart=again == "restart")
    if as_json:
        head = record.as_dict()
        head["batch"] = head.pop("id")
        head.pop("job_ids")
        if requeued is not None:
            head.update(requeued=len(requeued.job_ids), resuming=requeued.resuming)
        print(json.dumps(head), flush=True)
    else:
        if requeued is not None:
            say(_requeued_words(record.id, requeued, again == "restart"))
        counts = status_counts(connection, list(record.job_ids))
        say(
            f"Batch {record.id}: {record.count:,} × {record.task} on {record.queue}, enqueued "
            f"{local_time(record.created_at)}; {_progress_words(counts)}."
        )
        if record.unreadable:
            say(("warning: ", "yellow"), f"batch {record.id} is partly unreadable: {record.unreadable}.")
    enqueued_at = datetime.fromisoformat(record.created_at) if record.created_at else datetime.now(UTC)
    try:
        show_outcome(
            connection,
            list(record.job_ids),
            record.queue,
            enqueued_at,
            as_json=as_json,
            wait=wait,
            full_ids=full_ids,
            split=record.split,
        )
    except KeyboardInterrupt:
        detached(record.id)
        raise


def _requeued_words(batch_id: str, requeued: Requeued, restart: bool) -> str:
    count = len(requeued.job_ids)
    if not count:
        return f"Batch {batch_id}: no failed or stopped job to re-queue."
    how = (
        "from zero (their checkpoints discarded)"
        if restart
        else f"{requeued.resuming:,} of them resume from their last checkpoint"
    )
    return f"Batch {batch_id}: re-queued {count:,} failed or stopped job(s); {how}."


def _progress_words(counts: Mapping[str, int]) -> str:
    done = counts.get("finished", 0)
    failed = sum(counts.get(state, 0) for state in FAILED_STATES)
    waiting = sum(counts.values()) - done - failed
    return f"done {done:,} · failed {failed:,} · still to run {waiting:,}"


def batch_rows(connection: Redis, limit: int = defaults.RECENT_BATCHES) -> list[dict]:
    """The newest batches with their done / failed / waiting counts."""
    rows = []
    for record in batches.recent(connection, limit):
        full = record if record.unreadable else batches.load(connection, record.id) or record
        counts = status_counts(connection, list(full.job_ids))
        failed = sum(counts.get(state, 0) for state in FAILED_STATES)
        done = counts.get("finished", 0)
        row = full.as_dict()
        row.pop("job_ids")
        rows.append({**row, "done": done, "failed": failed, "waiting": full.count - done - failed})
    return rows


def list_batches(connection: Redis, *, as_json: bool) -> None:
    rows = batch_rows(connection)
    if as_json:
        sys.stdout.write("".join(json.dumps(row) + "\n" for row in rows))
        sys.stdout.flush()
    elif not rows:
        say("No batches yet (they expire with their jobs' results).")
    else:
        out_console.print(batches_table(rows))
        say("Re-attach to one with: python producer_main.py --batch ID [--wait]", style="dim")


__all__ = ["Sent", "catalog", "detached", "finish", "list_batches", "parse_params", "reattach", "send"]
