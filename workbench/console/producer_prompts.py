"""The producer's interactive menu: pick a task, its parameters, a queue and a count."""

from __future__ import annotations

from rich.prompt import Confirm, Prompt

from .. import defaults, validators
from ..errors import EXIT_OK, UsageError
from ..producer import Batch
from ..queues import queue_sizes
from .common import err_console, open_broker
from .producer import catalog, print_catalog, submit


def ask(question: str, convert, default: str | None = None):
    """Ask until `convert` accepts the answer; `q` quits."""
    while True:
        answer = Prompt.ask(question, default=default, console=err_console)
        if answer is not None and answer.strip().lower() == "q":
            raise KeyboardInterrupt
        try:
            return convert(answer if answer is not None else "")
        except UsageError as exc:
            err_console.print(f"[red]{exc}[/]")


def interactive(args) -> int:
    broker = open_broker(args.redis_url)
    connection = broker.connection
    while True:
        sizes = queue_sizes(connection)
        known = ", ".join(f"{name} ({size:,} queued, {workers} workers)" for name, size, workers in sizes) or "none yet"
        err_console.print(f"Broker {broker.masked_url}; queues: {known}")
        print_catalog()
        spec = ask("Task (q to quit)", lambda name: _task(name), default=next(iter(catalog())))
        params = {}
        for param in spec.params:
            default = "" if param.required else str(param.default)
            params[param.name] = ask(f"  {param.name} ({param.help})", param.convert, default=default)
        queue = ask("Queue", validators.queue_name, default=defaults.DEFAULT_QUEUE)
        count = ask("How many copies", validators.job_count, default="1")
        wait = Confirm.ask("Wait for the results?", default=True, console=err_console)
        submit(connection, Batch(spec, params, queue, count), wait=wait, as_json=False)
        if not Confirm.ask("Enqueue more?", default=True, console=err_console):
            return EXIT_OK


def _task(name: str):
    from ..catalog import task_named

    return task_named(catalog(), name.strip())
