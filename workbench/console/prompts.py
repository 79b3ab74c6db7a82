"""The one prompt look of both consoles: rich's PromptBase, re-asking with the validator's sentence.

- `ask(question, convert, default)` asks until `convert` accepts the answer; an empty answer
  means `default` (shown in the prompt); a UsageError's sentence is shown and the question asked again.
- `confirm(question, default)` is a yes/no question (rich's Confirm look: `[y/n]`).
- `q` quits (raises `Quit`, exit 0); where `back=True`, `b` goes back one question (raises `Back`).
  The end of input (Ctrl-D, a closed stream) raises EOFError, also exit 0; Ctrl-C is KeyboardInterrupt.
- `stream` reads the answers from a file instead of the terminal (tests, scripted menus).

Questions and defaults are our own words; anything from outside in them goes through `outside()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.prompt import Confirm, InvalidResponse, PromptBase
from rich.text import Text

from ..errors import UsageError
from .common import Quit, err_console, outside

T = TypeVar("T")

QUIT_WORDS = ("q", "quit")
BACK_WORDS = ("b", "back")


class Back(Exception):
    """Raised when the person answers `b` where going back one question is offered."""


def _keys(back: bool) -> Text:
    return Text(" (b back, q quits)" if back else " (q quits)", style="dim")


def _read(console: Console, prompt: Text, stream: TextIO | None) -> str:
    """One answer; the end of a stream is EOFError, as at a terminal (rich would return '' forever)."""
    if stream is None:
        return console.input(prompt)
    console.print(prompt, end="")
    line = stream.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


class Question(PromptBase[Any]):
    """A question whose answer `convert` turns into a value or refuses with one sentence."""

    def __init__(
        self, prompt: str | Text, convert: Callable[[str], Any], *, default: str | None, back: bool, console: Console
    ) -> None:
        super().__init__(Text(prompt) if isinstance(prompt, str) else prompt, console=console, show_choices=False)
        self.convert, self.default, self.back = convert, default, back

    def make_prompt(self, default: Any) -> Text:
        prompt = self.prompt.copy()
        if self.default not in (None, ""):
            prompt.append(" ").append(outside(f"({self.default})", "prompt.default"))
        return prompt.append(_keys(self.back)).append(self.prompt_suffix)

    @classmethod
    def get_input(cls, console: Console, prompt: Any, password: bool, stream: TextIO | None = None) -> str:
        return _read(console, prompt, stream)

    def process_response(self, value: str) -> Any:
        text = value.strip()
        if text.lower() in QUIT_WORDS:
            raise Quit
        if self.back and text.lower() in BACK_WORDS:
            raise Back
        if not text and self.default is not None:
            text = self.default
        try:
            return self.convert(text)
        except UsageError as exc:
            raise InvalidResponse(outside(str(exc), "red")) from None

    def on_validate_error(self, value: str, error: InvalidResponse) -> None:
        self.console.print(error.message)


class YesNo(Confirm):
    """rich's Confirm with the house conventions: `q` quits, `b` goes back, sentences in red."""

    def __init__(self, prompt: str | Text, *, back: bool, console: Console) -> None:
        super().__init__(Text(prompt) if isinstance(prompt, str) else prompt, console=console)
        self.back = back

    def make_prompt(self, default: Any) -> Text:
        prompt = super().make_prompt(default)
        prompt.right_crop(len(self.prompt_suffix))
        return prompt.append(_keys(self.back)).append(self.prompt_suffix)

    @classmethod
    def get_input(cls, console: Console, prompt: Any, password: bool, stream: TextIO | None = None) -> str:
        return _read(console, prompt, stream)

    def process_response(self, value: str) -> bool:
        text = value.strip().lower()
        if text in QUIT_WORDS:
            raise Quit
        if self.back and text in BACK_WORDS:
            raise Back
        if text in ("y", "yes"):
            return True
        if text in ("n", "no"):
            return False
        raise InvalidResponse(outside(f"answer y or n, not {value.strip()!r}.", "red"))

    def on_validate_error(self, value: str, error: InvalidResponse) -> None:
        self.console.print(error.message)


def ask(
    question: str | Text,
    convert: Callable[[str], T],
    default: str | None = None,
    *,
    back: bool = False,
    console: Console = err_console,
    stream: TextIO | None = None,
) -> T:
    """Ask until `convert` accepts the answer (empty means `default`, when there is one)."""
    return Question(question, convert, default=default, back=back, console=console)(stream=stream)


def confirm(
    question: str | Text,
    default: bool,
    *,
    back: bool = False,
    console: Console = err_console,
    stream: TextIO | None = None,
) -> bool:
    """A yes/no question; Enter takes `default`."""
    return bool(YesNo(question, back=back, console=console)(default=default, stream=stream))


def choose(
    question: str | Text,
    choices: list[str],
    default: str,
    *,
    back: bool = False,
    console: Console = err_console,
    stream: TextIO | None = None,
) -> str:
    """One of `choices`, by name or unique prefix (case-insensitive)."""

    def convert(raw: str) -> str:
        text = raw.strip().lower()
        matches = [choice for choice in choices if choice.lower().startswith(text)] if text else []
        if text in (choice.lower() for choice in choices):
            return next(choice for choice in choices if choice.lower() == text)
        if len(matches) == 1:
            return matches[0]
        raise UsageError(f"answer {' / '.join(choices)}, not {raw.strip()!r}.")

    label = question.copy() if isinstance(question, Text) else Text(question)
    label.append(f" [{'/'.join(choices)}]", style="prompt.choices")
    return ask(label, convert, default, back=back, console=console, stream=stream)


__all__ = ["Back", "Quit", "ask", "choose", "confirm"]
