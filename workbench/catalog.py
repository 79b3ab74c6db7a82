"""The shape of the task catalog: parameters, task specs, validation, and the `@task` decorator.

A task is declared where it is written, in any module of `task_def/` or of the user's own
(`WORKBENCH_TASKS`)::

    from workbench.catalog import INT, Param, task

    @task(params=[Param("n", INT, 10, "how many", 1, 1000)], timeout=60)
    def squares(n: int = 10) -> dict:
        \"\"\"Sum the first n squares.\"\"\"
        return {"sum": sum(i * i for i in range(n))}

This module is a leaf: task modules import it, and it imports no task module. Which modules make
up the catalog, and loading them, is `workbench.catalog_load`'s job.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from . import defaults, validators
from .errors import CatalogError, UsageError

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

    def bounds(self) -> tuple[float, float]:
        """(minimum, maximum) of a number parameter; @task refuses one declared without both."""
        if self.minimum is None or self.maximum is None:
            raise CatalogError(f"parameter {self.name} ({self.kind}) needs a minimum and a maximum.")
        return self.minimum, self.maximum

    def _convert_kind(self, raw: object) -> Any:
        if self.kind == INT:
            low, high = self.bounds()
            return validators.whole_number(raw, self.name, int(low), int(high))
        if self.kind == FLOAT:
            low, high = self.bounds()
            return validators.real_number(raw, self.name, float(low), float(high))
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
    #: Saves checkpoints (`workbench.checkpoint`): a re-run after an interruption carries on from the last one.
    resumable: bool = False

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


F = TypeVar("F", bound=Callable[..., Any])
#: Every task declared so far, by the module that declared it, then by name (see `declared`).
_DECLARED: dict[str, dict[str, TaskSpec]] = {}


@overload
def task(func: F, /) -> F: ...
@overload
def task(
    *,
    params: Sequence[Param] = (),
    timeout: int = defaults.TASK_TIMEOUT_S,
    io_bound: bool = False,
    retry_safe: bool = True,
    name: str | None = None,
    description: str | None = None,
    extra: Mapping[str, Any] | None = None,
    shown: Sequence[str] = (),
    resumable: bool = False,
) -> Callable[[F], F]: ...


def task(
    func: F | None = None,
    /,
    *,
    params: Sequence[Param] = (),
    timeout: int = defaults.TASK_TIMEOUT_S,
    io_bound: bool = False,
    retry_safe: bool = True,
    name: str | None = None,
    description: str | None = None,
    extra: Mapping[str, Any] | None = None,
    shown: Sequence[str] = (),
    resumable: bool = False,
) -> F | Callable[[F], F]:
    """Declare a module-level function a catalog task; the function itself is returned unchanged.

    `params` are its typed, bounded parameters (the function takes them as keyword arguments),
    `timeout` its job timeout in seconds, `io_bound` whether it waits rather than computes (a worker
    may run several at once), `retry_safe` whether running it twice is harmless. The name defaults
    to the function's, the menu's description to the first line of its docstring. `extra` carries
    anything else (`{"internal": True}` keeps a task out of the menu). `resumable=True`: the task saves
    checkpoints with `workbench.checkpoint` and a re-run carries on from the last one. Raises CatalogError when the
    declaration itself is wrong, so a broken task module fails to load with one sentence.
    """

    def declare(function: F) -> F:
        spec = _spec(function, params, timeout, io_bound, retry_safe, name, description, extra, shown, resumable)
        module = _DECLARED.setdefault(function.__module__, {})
        if spec.name in module and module[spec.name].func_path != spec.func_path:
            raise CatalogError(f"{function.__module__} declares the task {spec.name} twice.")
        module[spec.name] = spec
        return function

    return declare(func) if func is not None else declare


def declared(module: str) -> dict[str, TaskSpec]:
    """The tasks a module declared with @task when it was imported, by name."""
    return dict(_DECLARED.get(module, {}))


def _spec(
    function: Callable[..., Any],
    params: Sequence[Param],
    timeout: int,
    io_bound: bool,
    retry_safe: bool,
    name: str | None,
    description: str | None,
    extra: Mapping[str, Any] | None,
    shown: Sequence[str],
    resumable: bool = False,
) -> TaskSpec:
    """The TaskSpec of one declaration, after checking what a wrong one would break later."""
    where = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
    if not callable(function) or "<" in where:
        raise CatalogError(f"@task needs a module-level function, not {where}.")
    task_name = name or function.__name__
    if not task_name.isidentifier():
        raise CatalogError(f"the task name {task_name!r} of {where} is not an identifier.")
    doc = (inspect.getdoc(function) or "").strip()
    text = description or (doc.splitlines()[0] if doc else "")
    if not text.strip():
        raise CatalogError(f"task {task_name} ({where}) needs a description: a docstring or description=.")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise CatalogError(f"task {task_name}: timeout must be a whole number of seconds >= 1, not {timeout!r}.")
    if not isinstance(resumable, bool):
        raise CatalogError(f"task {task_name}: resumable must be True or False, not {resumable!r}.")
    params = tuple(params)
    if not all(isinstance(param, Param) for param in params):
        raise CatalogError(f"task {task_name}: params must be Param(...) entries.")
    for param in params:
        if param.kind in (INT, FLOAT):
            try:
                param.bounds()
            except CatalogError as exc:
                raise CatalogError(f"task {task_name}: {exc}") from None
    names = [param.name for param in params]
    if len(set(names)) != len(names):
        raise CatalogError(f"task {task_name}: a parameter name is used twice ({', '.join(names)}).")
    accepted = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    missing = [param for param in names if param not in accepted and not takes_any]
    if missing:
        raise CatalogError(f"task {task_name}: {where} takes no parameter {missing[0]!r}.")
    for param in params:
        if not param.required:
            try:
                param.convert(param.default)
            except UsageError as exc:
                raise CatalogError(f"task {task_name}: the default of {exc}") from None
    return TaskSpec(
        name=task_name,
        func=function,
        description=" ".join(text.split()),
        params=params,
        timeout_s=timeout,
        retry_safe=retry_safe,
        io_bound=io_bound,
        extra=dict(extra or {}),
        shown=tuple(shown),
        resumable=resumable,
    )
