"""Line prompts for the consumer: re-ask with one sentence until the answer converts.

Ctrl-D (end of input) and `q` end the program cleanly (exit 0, via `console.common.run`);
Ctrl-C does the same. Plain `input()` underneath, so it works in any terminal without waiting
for cursor-position replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from ..errors import UsageError
from .common import err_console

T = TypeVar("T")


def ask(question: str, convert: Callable[[str], T], default: str | None = None, console: Console = err_console) -> T:
    """Ask until `convert` accepts the answer (empty means `default`, when there is one)."""
    suffix = f" [{default}]" if default else ""
    while True:
        answer = console.input(f"{question}{suffix} (q quits): ", markup=False).strip()
        if answer.lower() in ("q", "quit"):
            raise KeyboardInterrupt
        if not answer and default is not None:
            answer = default
        try:
            return convert(answer)
        except UsageError as exc:
            console.print(str(exc), style="red", markup=False)
