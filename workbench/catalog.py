"""The shape of the task catalog: parameters, task specs, and validation against them.

The catalog itself lives in `task_def/`; this module only describes and checks it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import validators
from .errors import UsageError

#: Parameter kinds and the validator that converts a raw value of that kind.
INT, FLOAT, STR, BOOL = "int", "float", "str", "bool"


@dataclass(frozen=True)
class Param:
    """One typed, bounded task parameter."""

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    #: A pure validator run after the kind's own conversion (e.g. a URL's scheme), raising UsageError.
    check: Callable[[Any], Any] | None = None

    def convert(self, raw: object) -> Any:
        """Convert and bound-check `raw`, or raise UsageError naming this parameter."""
        value = self._convert_kind(raw)
        return self.check(value) if self.check is not None else value

    def _convert_kind(self, raw: object) -> Any:
        if self.kind == INT:
            return validators.whole_number(raw, self.name, int(self.minimum), int(self.maximum))
        if self.kind == FLOAT:
            return validators.real_number(raw, self.name, float(self.minimum), float(self.maximum))
        if self.kind == BOOL:
            return _boolean(raw, self.name)
        return validators.text(raw, self.name, int(self.maximum or 2048))

    def describe(self) -> str:
        """`limit: int, default 1,000,000, 2..2,000,000,000` for menus and --list-tasks."""
        bounds = ""
        if self.kind in (INT, FLOAT) and self.minimum is not None:
            bounds = f", {self.minimum:,}..{self.maximum:,}"
        shown = (
            f"{self.default:,}"
            if isinstance(self.default, int) and not isinstance(self.default, bool)
            else repr(self.default)
        )
        default = "required" if self.required else f"default {shown}"
        return f"{self.name}: {self.kind}, {default}{bounds}"


class TaskFailed(Exception):
    """Raised by a task when it refuses or fails; the message is one sentence for a person.

    RQ stores the formatted traceback as the job's error and readers show its last line. Python
    prints an exception's notes after the `module.Class: message` line, so the sentence is added as
    a note too: the last line of the stored traceback is then exactly the sentence.
    """

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.add_note(sentence)


def _boolean(raw: object, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off"):
        return False
    raise UsageError(f"{name} must be yes or no, not {str(raw)!r}.")


@dataclass(frozen=True)
class TaskSpec:
    """A catalog entry: what the task is, what it takes, and how it should be run."""

    name: str
    func: Callable[..., Any]
    description: str
    params: tuple[Param, ...] = ()
    timeout_s: int = 600
    retry_safe: bool = True
    #: Waits on the network or a timer rather than the CPU: a worker may run several at once (--threads).
    io_bound: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The result fields a results table shows (a scrape's title and word count); empty: all of them.
    shown: tuple[str, ...] = ()

    @property
    def func_path(self) -> str:
        """The dotted path RQ stores in the job and imports in the worker."""
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none"
        raise UsageError(f"task {self.name} has no parameter {name!r} (its parameters: {known}).")

    def validate(self, raw: Mapping[str, object]) -> dict[str, Any]:
        """Convert every given parameter, fill in defaults, and refuse unknown or missing ones."""
        values: dict[str, Any] = {}
        for name, value in raw.items():
            values[name] = self.param(name).convert(value)
        for param in self.params:
            if param.name not in values:
                if param.required:
                    raise UsageError(f"task {self.name} needs {param.name} ({param.help}).")
                values[param.name] = param.default
        return values


def task_named(catalog: Mapping[str, TaskSpec], name: str) -> TaskSpec:
    """Look a task up by name, ignoring case; else raise UsageError with "did you mean" and the catalog."""
    wanted = name.strip()
    if wanted in catalog:
        return catalog[wanted]
    by_lower = {known.lower(): spec for known, spec in catalog.items()}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    close = difflib.get_close_matches(wanted.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f" (did you mean {by_lower[close[0]].name}?)" if close else ""
    known = ", ".join(sorted(catalog))
    raise UsageError(f"unknown task {wanted!r}{hint}; choose one of: {known}.")
