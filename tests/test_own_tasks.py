"""Tasks of your own: `@task` in any module, WORKBENCH_TASKS, and the README's example run as written."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.catalog import FLOAT, INT, Param, declared, task
from workbench.catalog_load import build, user_modules
from workbench.errors import CatalogError

from .support import ROOT, child_pids

README = ROOT / "README.md"


def readme_example() -> tuple[str, str, str]:
    """The README's "Add your own task" section: (module file name, its Python, the shell commands)."""
    text = README.read_text()
    section = text.split("## Add your own task", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shell = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    filename = re.match(r"# (\S+\.py)\n", python).group(1)
    return filename, python, shell


def command_shims(folder: Path) -> Path:
    """`workbench-producer` and `workbench-consumer` as a clone runs them (the installed ones: test_install.py)."""
    folder.mkdir()
    for command, script in (("workbench-producer", "producer_main.py"), ("workbench-consumer", "consumer_main.py")):
        shim = folder / command
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / script}" "$@"\n')
        shim.chmod(0o755)
    return folder


def run_readme_example(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    """Write the README's module into `workdir` and run its commands there with bash, as a user would."""
    filename, python, shell = readme_example()
    (workdir / filename).write_text(python)
    process = subprocess.Popen(
        ["bash", "-e", "-c", shell],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        for pid in child_pids(process.pid):  # the backgrounded consumer, should `kill %1` not have ended it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_the_readme_example_runs_end_to_end(env, tmp_path):
    """The README's module and commands, verbatim: a real consumer runs the job, the producer shows its result."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    shims = command_shims(tmp_path / "bin")
    done = run_readme_example({**env, "PATH": f"{shims}:{env['PATH']}"}, workdir)
    assert done.returncode == 0, done.stderr
    assert "285" in done.stdout  # 0² + 1² + ... + 9²
    assert "sum_squares" in done.stderr and "finished" in done.stdout + done.stderr


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(source)


GOOD = """
from workbench.catalog import INT, Param, task

@task(params=[Param("n", INT, 1000, "how many squares", 1, 10_000_000)], timeout=60)
def sum_squares(n: int = 1000) -> dict:
    \"\"\"Sum the first n squares.\"\"\"
    return {"n": n, "sum": sum(i * i for i in range(n))}
"""


def test_user_tasks_join_the_menu_and_are_validated_like_built_in_ones(cli, tmp_path):
    write_module(tmp_path, "mytasks", GOOD)
    listed = cli("producer_main.py", "--list-tasks", WORKBENCH_TASKS="mytasks", PYTHONPATH=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "sum_squares" in listed.stdout and "Sum the first n squares." in listed.stdout
    assert "n: int, default 1,000, 1..10,000,000" in listed.stdout
    assert "count_primes" in listed.stdout  # the built-in tasks stay
    bad = cli("producer_main.py", "--task", "sum_squares", "--param", "n=0", WORKBENCH_TASKS="mytasks",
              PYTHONPATH=str(tmp_path))  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: n must be a whole number from 1 to 10,000,000, not 0."]


BROKEN = {
    "nosuchmodule": ("", "WORKBENCH_TASKS names nosuchmodule, which could not be imported "
                         "(ModuleNotFoundError: No module named 'nosuchmodule')."),  # fmt: skip
    "raises": ("raise RuntimeError('no database here')\n",
               "WORKBENCH_TASKS names raises, which could not be imported (RuntimeError: no database here)."),
    "syntax": ("def broken(:\n", "WORKBENCH_TASKS names syntax, which could not be imported (SyntaxError: "),
    "empty": ("X = 1\n", "WORKBENCH_TASKS names empty, which declares no @task function."),
    "clash": (
        "from workbench.catalog import task\n@task\ndef sleep():\n    'Not the built-in sleep.'\n",
        "two tasks are named sleep: task_def.sleep.sleep and clash.sleep; rename one (name=...).",
    ),
    "baddecl": (
        "from workbench.catalog import INT, Param, task\n"
        "@task(params=[Param('n', INT, 0, 'count', 1, 9)])\ndef f(n=0):\n    'Doc.'\n",
        "the WORKBENCH_TASKS module baddecl could not be loaded: task f: the default of n must be a whole "
        "number from 1 to 9, not 0.",
    ),
    "not a module": (None, "WORKBENCH_TASKS entry 'not a module' is not a module name (like mypkg.tasks)."),
}  # fmt: skip


@pytest.mark.parametrize("module", list(BROKEN))
def test_a_task_module_that_cannot_load_stops_producer_and_consumer_with_one_sentence(module, cli, tmp_path):
    source, sentence = BROKEN[module]
    if source:
        write_module(tmp_path, module, source)
    setting = {"WORKBENCH_TASKS": module, "PYTHONPATH": str(tmp_path)}
    for command in (("producer_main.py", "--list-tasks"), ("consumer_main.py", "--workers", "1", "--queue", "q")):
        done = cli(*command, **setting)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {sentence}"), (command, lines)
        assert "Traceback" not in done.stderr


def test_a_worker_without_the_module_refuses_the_job(cli, consumer, tmp_path):
    """The producer knows the task; this consumer was started without WORKBENCH_TASKS, so its workers do not."""
    write_module(tmp_path, "mytasks", GOOD)
    consumer("--workers", "1", "--queue", "bare", wait_workers=1)
    done = cli("producer_main.py", "--task", "sum_squares", "--param", "n=3", "--queue", "bare", "--wait",
               WORKBENCH_TASKS="mytasks", PYTHONPATH=str(tmp_path))  # fmt: skip
    assert done.returncode == 1
    assert "not a catalog task on this worker: mytasks.sum_squares" in done.stderr


# -- the decorator itself ------------------------------------------------------------------------


@task
def bare(x: float = 1.0) -> float:
    """A task declared without arguments."""
    return x


@task(params=[Param("x", FLOAT, 1.0, "a number", 0, 10)], io_bound=True, retry_safe=False, name="renamed",
      description="Given its own description.", extra={"internal": True})  # fmt: skip
def described(x: float = 1.0) -> float:
    """Not this line."""
    return x


def test_the_decorator_returns_the_function_and_records_its_spec():
    assert bare(2.0) == 2.0 and described(3.0) == 3.0
    specs = declared(__name__)
    assert specs["bare"].description == "A task declared without arguments." and specs["bare"].timeout_s == 600
    spec = specs["renamed"]
    assert (spec.func, spec.io_bound, spec.retry_safe, spec.extra) == (described, True, False, {"internal": True})
    assert spec.description == "Given its own description." and spec.func_path == f"{__name__}.described"
    assert spec.validate({"x": "2.5"}) == {"x": 2.5}
    catalog = build([__name__])
    assert catalog["renamed"] is spec and "renamed" not in catalog.public() and "bare" in catalog.public()
    assert catalog.spec_for_path(f"{__name__}.bare") is specs["bare"]


def nothing(n: int = 0) -> None:
    """Does nothing."""


WRONG = [
    (dict(params=[Param("m", INT, 1, "m", 0, 9)]), "takes no parameter 'm'"),
    (dict(params=[Param("n", INT, 1, "n", 0, 9), Param("n", INT, 1, "n", 0, 9)]), "a parameter name is used twice"),
    (dict(params=[Param("n", INT, 99, "n", 0, 9)]), "the default of n must be a whole number from 0 to 9, not 99"),
    (dict(params=[("n", INT)]), "params must be Param(...) entries"),
    (dict(timeout=0), "timeout must be a whole number of seconds >= 1, not 0"),
    (dict(name="two words"), "is not an identifier"),
    (dict(description=" "), "needs a description: a docstring or description="),
]


@pytest.mark.parametrize(("options", "sentence"), WRONG)
def test_a_wrong_declaration_is_one_sentence(options, sentence):
    with pytest.raises(CatalogError) as refused:
        task(**options)(nothing)
    assert sentence in str(refused.value)


def test_only_module_level_functions_can_be_tasks():
    def local() -> None:
        """Inside a function: RQ could not name it."""

    with pytest.raises(CatalogError, match="needs a module-level function"):
        task(local)


def test_workbench_tasks_lists_modules():
    assert user_modules(" a.b , c,, a.b ") == ["a.b", "c"]
    assert user_modules(None) == [] and user_modules("") == []
