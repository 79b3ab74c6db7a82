"""The producer's interactive menu: task, parameters, queue, count, options, now / later / repeatedly.

After each batch it comes back to the task list. `b` goes back one question, `q` quits (exit 0),
Ctrl-D too; Ctrl-C at a question quits (exit 130), Ctrl-C while waiting detaches from the batch
(its id is printed to re-attach) and returns to the menu. Flags given on the command line fix
their answers and skip their questions. A batch is either wholly enqueued or not at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from rich.text import Text

from .. import defaults, validators
from ..broker import Broker
from ..catalog import TaskSpec, task_named
from ..errors import EXIT_OK, BrokerUnavailable, NotConfirmed, UsageError, WorkbenchError
from ..fanout import check_split, split_count, splittable
from ..producer import Batch, listening_workers, make_batch
from ..queues import queue_sizes
from .common import Quit, open_broker, say
from .producer_flow import catalog, detached, finish, parse_params, send
from .producer_schedules import make_schedule, register, repeat_answer, when_answer
from .producer_view import print_catalog
from .prompts import Back, ask, choose, confirm

WHEN_CHOICES = ["now", "later", "repeatedly"]


@dataclass
class Answers:
    """What the person chose so far in this round."""

    spec: TaskSpec | None = None
    params: dict[str, Any] = field(default_factory=dict)
    split: int = 1
    queue: str = defaults.DEFAULT_QUEUE
    count: int = 1
    timeout: int | None = None
    retries: int = 0
    retry_interval: str = ""
    when: str = "now"
    at: datetime | None = None
    every: int | None = None
    cron: str | None = None
    name: str | None = None


def interactive(args: argparse.Namespace) -> int:
    """The menu loop; returns 0 when the person quits with `q` or Ctrl-D."""
    fixed = check_flags(args)
    broker = open_menu_broker(args)
    try:
        while True:
            header(broker.connection)
            one_round(broker.connection, args, fixed)
    except (Quit, EOFError):
        say("\nBye.")
        return EXIT_OK


def open_menu_broker(args: argparse.Namespace) -> Broker:
    return open_broker(args.redis_url, announce=True)


def check_flags(args: argparse.Namespace) -> dict[str, str]:
    """Flags given alongside the menu fix their answers: refuse bad ones now, before any question."""
    if args.queue is not None:
        validators.queue_name(args.queue)
    if args.count is not None:
        validators.job_count(args.count)
    if args.timeout is not None:
        validators.job_timeout(args.timeout)
    if args.retries is not None:
        validators.retries(args.retries)
    if args.retry_interval is not None:
        validators.retry_intervals(args.retry_interval)
    if args.split is not None and split_count(args.split) > 1 and args.count is not None:
        raise UsageError("--split and --count cannot be combined: a split runs one range as several chunks.")
    if any(value is not None for value in (args.in_, args.at, args.every, args.cron)):
        raise UsageError("the menu asks when to run; --in, --at, --every and --cron go with --task.")
    return parse_params(args.param)


def header(connection: Redis) -> None:
    """How many workers listen on each known queue."""
    sizes = queue_sizes(connection)
    listening = ", ".join(f"{name} {workers}" for name, _, workers in sizes) or "no queues yet"
    say(f"Workers listening: {listening}")


def served_queue(connection: Redis) -> str:
    """The queue question's default: the queue most workers serve (the usual one on a tie)."""
    sizes = queue_sizes(connection)
    served = [(workers, name == defaults.DEFAULT_QUEUE, name) for name, _, workers in sizes if workers]
    return max(served)[2] if served else defaults.DEFAULT_QUEUE


def one_round(connection: Redis, args: argparse.Namespace, fixed: dict[str, str]) -> None:
    """One pass through the questions (each may go back to the one before), then the batch."""
    answers = Answers(timeout=None)
    steps: list[Callable[[Any, argparse.Namespace, dict[str, str], Answers], bool]] = [
        ask_task,
        ask_params,
        ask_split,
        ask_queue,
        ask_count,
        ask_options,
        ask_when,
    ]
    asked: list[int] = []
    step = 0
    while step < len(steps):
        try:
            if steps[step](connection, args, fixed, answers):
                asked.append(step)
            step += 1
        except Back:
            step = asked.pop() if asked else 0
    act(connection, args, answers)


def ask_task(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    tasks = catalog()
    print_catalog(tasks)
    answers.spec = ask("Task (number or name)", lambda raw: pick_task(tasks, raw))
    return True


def pick_task(tasks: dict[str, TaskSpec], raw: str) -> TaskSpec:
    text = raw.strip()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= len(tasks):
        return list(tasks.values())[int(text) - 1]
    if not text:
        raise UsageError(f"choose a task by number (1-{len(tasks)}) or by name.")
    return task_named(tasks, text)


def ask_params(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    """Each parameter not fixed by --param; `b` on one goes back to the one before."""
    spec = answers.spec
    assert spec is not None
    given = {name: spec.param(name).convert(value) for name, value in fixed.items()}
    open_params = [param for param in spec.params if param.name not in fixed]
    answers.params = dict(given)
    index = 0
    while index < len(open_params):
        param = open_params[index]
        default = None if param.required else str(param.default)
        bounds = f", {param.minimum:,}..{param.maximum:,}" if param.minimum is not None else ""
        try:
            answers.params[param.name] = ask(
                f"  {param.name} — {param.help} ({param.kind}{bounds})", param.convert, default, back=True
            )
            index += 1
        except Back:
            if index == 0:
                raise
            index -= 1
    return bool(open_params)


def ask_split(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    """count_primes only: how many parallel chunks (1 = one job)."""
    batch = _batch(answers, args)
    if args.split is not None:
        answers.split = split_count(args.split)
        check_split(batch, answers.split)
        return False
    if not splittable(batch.spec):
        answers.split = 1
        return False

    def convert(raw: str) -> int:
        parts = split_count(raw)
        check_split(batch, parts)
        return parts

    question = f"Split the range into how many parallel chunks (1 = one job, up to {defaults.MAX_SPLIT})"
    answers.split = ask(question, convert, "1", back=True)
    return True


def ask_queue(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    """The queue, defaulting to one workers serve; a queue nobody serves is confirmed first."""
    if args.queue is not None:
        answers.queue = validators.queue_name(args.queue)
        unserved = listening_workers(connection, answers.queue) == 0
        _confirm_unserved(connection, answers.queue, back=True)
        return unserved
    sizes = queue_sizes(connection)
    known = ", ".join(f"{name} ({queued:,} queued, {workers} workers)" for name, queued, workers in sizes)
    say(f"Queues: {known or 'none yet'}")
    while True:
        answers.queue = ask("Queue", validators.queue_name, served_queue(connection), back=True)
        if _confirm_unserved(connection, answers.queue, back=False):
            return True


def _confirm_unserved(connection: Redis, queue: str, *, back: bool) -> bool:
    """True to go on; False when the person prefers another queue."""
    if listening_workers(connection, queue) > 0:
        return True
    question = Text(f"No worker listens on {queue}; its jobs will wait there. Enqueue on {queue} anyway?")
    if confirm(question, False, back=back):
        return True
    if back:
        raise Back
    return False


def ask_count(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    if answers.split > 1:
        answers.count = 1
        return False
    if args.count is not None:
        answers.count = validators.job_count(args.count)
        return False
    answers.count = ask(
        f"How many copies ({defaults.MIN_COUNT}-{defaults.MAX_COUNT:,})", validators.job_count, "1", back=True
    )
    return True


def ask_options(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    """One optional step: timeout, retries and their back-off, the defaults shown."""
    spec = answers.spec
    assert spec is not None
    answers.timeout = validators.job_timeout(args.timeout) if args.timeout is not None else None
    answers.retries = validators.retries(args.retries) if args.retries is not None else 0
    answers.retry_interval = args.retry_interval or ""
    if args.timeout is not None and args.retries is not None:
        return False
    retries = f"{answers.retries} retries" if answers.retries else "no retries"
    question = f"Change the timeout or retries? (now: timeout {answers.timeout or spec.timeout_s:,} s, {retries})"
    if not confirm(question, False, back=True):
        return True
    if args.timeout is None:
        answers.timeout = ask(
            f"  Timeout in seconds ({defaults.MIN_JOB_TIMEOUT_S}-{defaults.MAX_JOB_TIMEOUT_S:,})",
            validators.job_timeout,
            str(spec.timeout_s),
            back=True,
        )
    if args.retries is None and spec.retry_safe:
        answers.retries = ask(f"  Retries on failure (0-{defaults.MAX_RETRIES})", validators.retries, "0", back=True)
    if answers.retries and not args.retry_interval:
        wait = ask("  Seconds to wait before each retry (e.g. 10,30,60; 0 = at once)", _interval, "0", back=True)
        answers.retry_interval = wait
    return True


def _interval(raw: str) -> str:
    text = raw.strip()
    if text in ("", "0"):
        return ""
    validators.retry_intervals(text)
    return text


def ask_when(connection: Redis, args: argparse.Namespace, fixed: dict[str, str], answers: Answers) -> bool:
    """Now, later (a delay or a time), or repeatedly (a period or a cron line, and a name)."""
    answers.when, answers.at, answers.every, answers.cron = "now", None, None, None
    if answers.split > 1:
        return False
    while True:
        answers.when = choose("Run it", WHEN_CHOICES, "now", back=True)
        try:
            if answers.when == "later":
                answers.at = ask(
                    "  In how long, or at what time? (e.g. 10m, 2h, 2026-12-24T18:00)", when_answer, back=True
                )
            elif answers.when == "repeatedly":
                answers.every, answers.cron = ask(
                    "  How often? (e.g. 30s, 10m, or a cron line '*/5 * * * *')", repeat_answer, back=True
                )
                name = answers.spec.name if answers.spec else None
                answers.name = ask("  Name of the schedule", validators.schedule_name, name, back=True)
            return True
        except Back:
            continue


def _batch(answers: Answers, args: argparse.Namespace) -> Batch:
    assert answers.spec is not None
    return make_batch(answers.spec, answers.params, count=1, at_front=args.at_front)


def act(connection: Redis, args: argparse.Namespace, answers: Answers) -> None:
    """Enqueue the batch now or later, or register the schedule; wait if asked."""
    assert answers.spec is not None
    batch = make_batch(
        answers.spec,
        answers.params,
        queue=answers.queue,
        count=answers.count,
        timeout=answers.timeout,
        retries=answers.retries,
        retry_interval=answers.retry_interval or None,
        at_front=args.at_front,
    )
    if answers.when == "repeatedly":
        try:
            register(connection, make_schedule(batch, answers.name, answers.every, answers.cron), as_json=False)
        except BrokerUnavailable:
            raise
        except WorkbenchError as exc:
            say(str(exc), style="red")
        return
    try:
        sent = send(connection, batch, answers.split, as_json=False, at=answers.at, show=defaults.SHOWN_IDS)
    except NotConfirmed as exc:  # queued, not known to be safe: said in red, back to the menu
        say(str(exc), style="red")
        return
    if answers.at is not None:
        return  # a consumer serving the queue moves it there when the time comes
    served = listening_workers(connection, batch.queue) > 0
    if not (args.wait or confirm("Wait for the results?", served)):
        return
    baseline = answers.split > 1 and (args.baseline or confirm("Also time the range as one job, to compare?", False))
    try:
        finish(connection, sent, as_json=False, baseline=baseline, full_ids=args.full_ids)
    except BrokerUnavailable:
        raise
    except WorkbenchError as exc:  # jobs failed, or nobody served the queue: say so, back to the menu
        say(str(exc), style="red")
    except KeyboardInterrupt:
        detached(batch.batch_id)
