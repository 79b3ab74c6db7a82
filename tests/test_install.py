"""`pip install .` into a fresh venv: the packages, the dashboard's files and every console script.

Slow (it installs the dependencies from the package registry, or pip's wheel cache): `make test-slow`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import ROOT
from .test_own_tasks import run_readme_example

pytestmark = pytest.mark.slow

COMMANDS = ["workbench-producer", "workbench-consumer", "workbench-dashboard", "workbench-broker", "workbench-workers"]
#: The hosts helper's broker console; the script points at it whether or not this checkout has it yet.
#: What a clone holds besides the project: never copied into the build.
UNSHIPPED = (".venv", ".git", ".data", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project installed by `pip install <clone>`; its bin folder."""
    folder = tmp_path_factory.mktemp("install")
    # From a copy of the clone, so the build's own folders (build/, *.egg-info) never land in it.
    source = folder / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*UNSHIPPED))
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"pip install . failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return venv / "bin"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_console_script_is_installed_and_answers_help(command, installed, tmp_path):
    done = run([str(installed / command), "--help"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "Traceback" not in done.stderr


def test_the_workers_command_maps_to_the_kill_thread_scripts(installed, tmp_path):
    for sub, flag in (("list", "--json"), ("kill", "--force"), ("kill-job", "JOB_ID")):
        done = run([str(installed / "workbench-workers"), sub, "--help"], cwd=tmp_path)
        assert done.returncode == 0 and flag in done.stdout, (sub, done.stderr)
    bad = run([str(installed / "workbench-workers"), "reboot"], cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: unknown command 'reboot'; choose list, kill or kill-job (see workbench-workers --help)."
    )


def test_packages_and_dashboard_files_come_from_the_install_not_the_clone(installed, tmp_path):
    python = str(installed / "python")
    code = (
        "import task_def, workbench, workbench.dashboard as d, pathlib, sys\n"
        "from workbench.catalog_load import load_catalog\n"
        "root = pathlib.Path(d.__file__).parent\n"
        "print(workbench.__file__, task_def.__file__, (root / 'templates/rq_dashboard/base.html').exists(),"
        " (root / 'static/dashboard.js').exists(), sorted(load_catalog().public()))"
    )
    done = run([python, "-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    workbench_file, task_def_file, template, script, tasks = done.stdout.split(" ", 4)
    assert "site-packages" in workbench_file and "site-packages" in task_def_file
    assert (template, script) == ("True", "True")
    assert "scrape" in tasks and "count_primes" in tasks


def test_the_readme_example_runs_with_the_installed_commands(installed, env, tmp_path):
    done = run_readme_example({**env, "PATH": f"{installed}:{env['PATH']}"}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "285" in done.stdout
