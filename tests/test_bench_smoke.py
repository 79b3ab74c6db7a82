"""The benchmark harness, run at tiny sizes so it cannot rot: every row, both sides, numbers out.

Nothing here checks a timing: the figures of a smoke run mean nothing, only their presence does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench.metrics import metrics
from bench.report import README_END, README_START, replace_section
from bench.rows import SMOKE

from .support import ROOT

NUMBER = re.compile(r"\d")


@pytest.mark.slow  # a minute of CPU on both cores: `make test-slow`
def test_smoke_run_measures_every_row_on_both_sides(tmp_path):
    out = tmp_path / "RESULTS.md"
    readme_before = (ROOT / "README.md").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "WORKBENCH_", "RQ_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in done.stdout.splitlines() if "|" in line}
    for metric in metrics(SMOKE):
        assert metric.label in rows, f"row missing: {metric.label}"
        unit, ours, plain, ratio = (cell.strip() for cell in rows[metric.label][:4])
        assert NUMBER.search(ours) and (NUMBER.search(plain) or not metric.plain), rows[metric.label]
        assert NUMBER.search(ratio) or not metric.ratio, rows[metric.label]
    written = out.read_text()
    assert "Machine:" in written and "cores" in written and "rq 3." in written and "valkey" in written
    assert all(metric.label in written for metric in metrics(SMOKE))
    assert (ROOT / "README.md").read_text() == readme_before  # a smoke run never touches the README


def test_readme_section_is_replaced_between_the_markers_only():
    text = f"# Title\n\nbefore\n{README_START}\nold table\n{README_END}\nafter\n"
    updated = replace_section(text, "| new | table |")
    assert updated == f"# Title\n\nbefore\n{README_START}\n| new | table |\n{README_END}\nafter\n"
    assert replace_section(updated, "again").count(README_START) == 1


def test_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="bench:start"):
        replace_section("# no markers here\n", "table")
