"""The one place the task catalog is loaded: every module of `task_def/`, then WORKBENCH_TASKS.

Dependencies run one way: the workbench (producer, workers, demo, bench) asks this module for the
catalog; this module imports the task modules; task modules import only leaf helpers
(`workbench.catalog` for `@task`, `workbench.progress`, ...), never this module nor anything
that imports it.

The catalog is loaded once per process, on first use. A consumer loads it before forking its
workers, so they inherit it (and the libraries the tasks import) instead of importing it per job.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from . import defaults
from .catalog import TaskSpec, declared
from .errors import CatalogError

#: The package whose every module is a task module, found without being listed anywhere.
BUILTIN_PACKAGE = "task_def"
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class Catalog(Mapping[str, TaskSpec]):
    """Every task a worker may run, by name; also by the dotted path RQ stores in a job."""

    tasks: Mapping[str, TaskSpec]
    modules: tuple[str, ...] = ()
    #: Dotted paths a job may name as its RQ success/failure/stopped callback; workers import no others.
    callbacks: frozenset[str] = frozenset()
    by_path: Mapping[str, TaskSpec] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_path", {spec.func_path: spec for spec in self.tasks.values()})

    def __getitem__(self, name: str) -> TaskSpec:
        return self.tasks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def public(self) -> dict[str, TaskSpec]:
        """The tasks a person may pick (internal steps such as the fan-out combiner are left out)."""
        return {name: spec for name, spec in self.tasks.items() if not spec.extra.get("internal")}

    def spec_for_path(self, func_path: str | None) -> TaskSpec | None:
        """The task a job's dotted function path names, or None when it names none of this catalog's."""
        return self.by_path.get(func_path or "")


_loaded: Catalog | None = None


def load_catalog() -> Catalog:
    """This process's catalog: loaded on the first call (raising CatalogError), then the same object."""
    global _loaded
    if _loaded is None:
        _loaded = build(user_modules(os.environ.get(defaults.ENV_TASKS)))
    return _loaded


def user_modules(setting: str | None) -> list[str]:
    """The module names in a WORKBENCH_TASKS value (comma-separated), checked for shape."""
    names = [part.strip() for part in (setting or "").split(",") if part.strip()]
    for name in names:
        if not _MODULE_NAME.match(name):
            raise CatalogError(f"{defaults.ENV_TASKS} entry {name!r} is not a module name (like mypkg.tasks).")
    return list(dict.fromkeys(names))


def build(extra_modules: list[str]) -> Catalog:
    """Import every task_def module and then each extra module, and collect what they declared."""
    modules = [*builtin_modules(), *extra_modules]
    if extra_modules and os.getcwd() not in sys.path:
        # Like `rq worker`, find the user's modules in the folder the command runs in; appended, so
        # nothing there can shadow the standard library or an installed package.
        sys.path.append(os.getcwd())
    tasks: dict[str, TaskSpec] = {}
    for module in modules:
        found = declared(_import(module, builtin=module not in extra_modules))
        if not found and module in extra_modules:
            raise CatalogError(f"{defaults.ENV_TASKS} names {module}, which declares no @task function.")
        for name, spec in found.items():
            if name in tasks and tasks[name].func_path != spec.func_path:
                raise CatalogError(
                    f"two tasks are named {name}: {tasks[name].func_path} and {spec.func_path}; rename one (name=...)."
                )
            tasks[name] = spec
    order = getattr(sys.modules[BUILTIN_PACKAGE], "MENU_ORDER", ())
    first = {name: tasks[name] for name in order if name in tasks}
    return Catalog(tasks={**first, **tasks}, modules=tuple(modules))


def builtin_modules() -> list[str]:
    """Every module of the task_def package (and its subpackages), in name order."""
    package = sys.modules[_import(BUILTIN_PACKAGE, builtin=True)]
    path = getattr(package, "__path__", [])
    names = [info.name for info in pkgutil.walk_packages(path, f"{BUILTIN_PACKAGE}.", onerror=_walk_error)]
    return [BUILTIN_PACKAGE, *sorted(names)]


def _import(module: str, *, builtin: bool) -> str:
    """Import `module` by name and return the name; any failure is one sentence naming it."""
    try:
        importlib.import_module(module)
    except CatalogError as exc:  # a wrong @task declaration in it
        where = "the task module" if builtin else f"the {defaults.ENV_TASKS} module"
        raise CatalogError(f"{where} {module} could not be loaded: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in someone's module is reported, never a traceback
        where = "the task module" if builtin else f"{defaults.ENV_TASKS} names"
        sentence = (str(exc).strip().splitlines() or [""])[0].rstrip(".")
        detail = f"{type(exc).__name__}: {sentence}" if sentence else type(exc).__name__
        raise CatalogError(f"{where} {module}, which could not be imported ({detail}).") from None
    return module


def _walk_error(name: str) -> None:
    raise CatalogError(f"the task package {name} could not be imported.")
