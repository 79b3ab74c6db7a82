"""The producer's interactive menu: pick a task, its parameters, a queue and a count; enqueue; wait.

Flags given on the command line fix their answers and skip their prompts. `q`, Ctrl-C or Ctrl-D
at any prompt ends the session with exit 0; a batch is either wholly enqueued or not at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rich.markup import escape
from rich.prompt import Prompt

from .. import defaults, validators
from ..catalog import Param, TaskSpec, task_named
from ..errors import EXIT_OK, BrokerUnavailable, UsageError, WorkbenchError
from ..fanout import check_split, split_count, splittable
from ..producer import Batch, listening_workers, make_batch
from ..queues import queue_sizes
from .common import err_console, open_broker
from .producer import catalog, finish, parse_params, send
from .producer_view import print_catalog

#: A person reads a few ids; the rest are in the results table, the dashboard, or --json.
SHOW_IDS = 20


class Quit(Exception):
    """Raised when the person answers `q`: leave the menu cleanly."""


def ask(question: str, convert: Callable[[str], Any], default: str | None = None) -> Any:
    """Ask until `convert` accepts the answer, re-asking with its one-sentence reason; `q` quits."""
    while True:
        answer = Prompt.ask(question, default=default, console=err_console)
        answer = "" if answer is None else answer
        if answer.strip().lower() == "q":
            raise Quit
        try:
            return convert(answer)
        except UsageError as exc:
            err_console.print(f"[red]{escape(str(exc))}[/]")


def yes_no(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("y", "yes"):
        return True
    if text in ("n", "no"):
        return False
    raise UsageError(f"answer y or n, not {raw!r}.")


def interactive(args: argparse.Namespace) -> int:
    """The menu loop; returns 0 when the person quits."""
    fixed = check_flags(args)
    broker = open_broker(args.redis_url)
    try:
        while True:
            header(broker.masked_url, broker.connection)
            one_round(broker.connection, args, fixed)
    except (Quit, KeyboardInterrupt, EOFError):
        err_console.print("\nBye.")
        return EXIT_OK


def check_flags(args: argparse.Namespace) -> dict[str, str]:
    """Flags given alongside the menu fix their answers: refuse bad ones now, before any prompt."""
    if args.queue is not None:
        validators.queue_name(args.queue)
    if args.count is not None:
        validators.job_count(args.count)
    if args.timeout is not None:
        validators.job_timeout(args.timeout)
    if args.retries is not None:
        validators.retries(args.retries)
    if args.split is not None and split_count(args.split) > 1 and args.count is not None:
        raise UsageError("--split and --count cannot be combined: a split runs one range as several chunks.")
    return parse_params(args.param)


def header(url: str, connection) -> None:
    """The first line: which broker, and how many workers listen on each known queue."""
    sizes = queue_sizes(connection)
    listening = ", ".join(f"{name} {workers}" for name, _, workers in sizes) or "no queues yet"
    err_console.print(f"Broker {url} · workers listening: {listening}", markup=False, highlight=False)


def one_round(connection, args: argparse.Namespace, fixed: dict[str, str]) -> None:
    """One pass through the menu: choose, enqueue, and optionally wait."""
    tasks = catalog()
    print_catalog(tasks)
    spec = ask("Task (number or name; q quits)", lambda raw: pick_task(tasks, raw))
    params = {param.name: ask_param(param) for param in spec.params if param.name not in fixed}
    given = {name: spec.param(name).convert(value) for name, value in fixed.items()}
    batch = make_batch(
        spec, {**params, **given}, count=1, timeout=args.timeout, retries=args.retries, at_front=args.at_front
    )
    split = ask_split(batch, args)
    queue = validators.queue_name(args.queue) if args.queue is not None else ask_queue(connection)
    count = 1
    if split == 1:
        question = f"How many copies ({defaults.MIN_COUNT}-{defaults.MAX_COUNT:,})"
        count = validators.job_count(args.count) if args.count is not None else ask(question, validators.job_count, "1")
    batch = replace(batch, queue=queue, count=count)
    enqueue_and_wait(connection, batch, split, args)


def pick_task(tasks: dict[str, TaskSpec], raw: str) -> TaskSpec:
    text = raw.strip()
    if text.isdigit() and 1 <= int(text) <= len(tasks):
        return list(tasks.values())[int(text) - 1]
    if not text:
        raise UsageError(f"choose a task by number (1-{len(tasks)}) or by name.")
    return task_named(tasks, text)


def ask_param(param: Param) -> Any:
    default = None if param.required else str(param.default)
    bounds = f", {param.minimum:,}..{param.maximum:,}" if param.minimum is not None else ""
    return ask(f"  {param.name} — {escape(param.help)} ({param.kind}{bounds})", param.convert, default=default)


def ask_queue(connection) -> str:
    sizes = queue_sizes(connection)
    known = ", ".join(f"{name} ({queued:,} queued, {workers} workers)" for name, queued, workers in sizes)
    err_console.print(f"Queues: {known or 'none yet'}", markup=False, highlight=False)
    return ask("Queue", validators.queue_name, default=defaults.DEFAULT_QUEUE)


def ask_split(batch: Batch, args: argparse.Namespace) -> int:
    """count_primes only: how many parallel chunks (1 = one job)."""
    if args.split is not None:
        split = split_count(args.split)
        check_split(batch, split)
        return split
    if not splittable(batch.spec):
        return 1

    def convert(raw: str) -> int:
        parts = split_count(raw)
        check_split(batch, parts)
        return parts

    return ask(f"Split the range into how many parallel chunks (1 = one job, up to {defaults.MAX_SPLIT})", convert, "1")


def enqueue_and_wait(connection, batch: Batch, split: int, args: argparse.Namespace) -> None:
    sent = send(connection, batch, split, as_json=False, wait=False, show=SHOW_IDS)
    served = listening_workers(connection, batch.queue) > 0
    if not (args.wait or ask("Wait for the results? (y/n)", yes_no, default="y" if served else "n")):
        return
    baseline = split > 1 and (args.baseline or ask("Also time the range as one job, to compare? (y/n)", yes_no, "n"))
    try:
        finish(connection, sent, as_json=False, baseline=baseline)
    except BrokerUnavailable:
        raise
    except WorkbenchError as exc:  # jobs failed, or nobody served the queue: say so, back to the menu
        err_console.print(f"[red]{escape(str(exc))}[/]")
    except KeyboardInterrupt:
        err_console.print("Stopped waiting; the jobs stay on their queue.")
        raise Quit from None
