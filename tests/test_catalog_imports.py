"""The catalog's imports run one way: workbench -> catalog_load -> task modules -> leaf helpers.

Read from the source (every `import`, also inside functions), not from what happens to be loaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .support import ROOT

PACKAGES = ("workbench", "task_def")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its source."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            found.update(target for target in targets if target in modules)
        graph[name] = found - {name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_task_modules_never_import_the_loader_or_anything_that_does():
    graph = import_graph()
    loader = "workbench.catalog_load"
    loaders = {loader} | {name for name in graph if loader in reachable(graph, name)}
    assert "workbench.jobs" in loaders  # jobs asks the loader for the catalog
    for name in graph:
        if name.split(".")[0] == "task_def":
            assert not reachable(graph, name) & loaders, f"{name} imports back into the catalog loader"


def test_the_decorator_module_is_a_leaf_and_nothing_is_in_a_cycle_with_the_catalog():
    graph = import_graph()
    assert not {name for name in reachable(graph, "workbench.catalog") if name.startswith("task_def")}
    for name in ("workbench.catalog", "workbench.catalog_load", "workbench.jobs", "task_def.combine"):
        assert name not in reachable(graph, name), f"{name} is in an import cycle"
