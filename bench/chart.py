"""The comparison as a picture: ours beside plain RQ for the rows a reader compares first (PNG, matplotlib).

Drawn by a full `make bench` next to bench/RESULTS.md (docs/bench.png, shown in the README beside the
table). matplotlib is a bench dependency only (requirements-bench.txt): without it the chart is
skipped with one line, the table is still written.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from .metrics import Series
from .runner import Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: (metric key, panel title, higher is better)
PANELS = (
    ("noop_1", "no-op jobs/s, 1 worker", True),
    ("noop_pool", "no-op jobs/s, pool", True),
    ("cmds_per_job", "broker commands per no-op job", False),
    ("lat_p50", "enqueue-to-start p50 (ms)", False),
    ("pool_pss", "idle pool PSS (MiB)", False),
)
OURS_COLOUR, PLAIN_COLOUR = "#2b7bba", "#b0b0b0"


def draw(run: Run, path: Path) -> str | None:
    """Write the chart to `path`; return None, or why it was not drawn (one sentence)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r requirements-bench.txt); no chart drawn."
    series = {s.metric.key: s for s in run.series}
    shown = [(key, title, up) for key, title, up in PANELS if key in series and series[key].complete]
    if not shown:
        return "no row to chart in this run."
    figure, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), squeeze=False)
    for axis, (key, title, higher_better) in zip(axes[0], shown, strict=True):
        _panel(axis, series[key], title, higher_better)
    figure.suptitle("workbench (ours) vs plain RQ — median over rounds, same run", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _panel(axis: Axes, series: Series, title: str, higher_better: bool) -> None:
    ours, plain = statistics.median(series.ours), statistics.median(series.plain)
    bars = axis.bar(["ours", "plain RQ"], [ours, plain], color=[OURS_COLOUR, PLAIN_COLOUR])
    digits = series.metric.digits
    for bar, value in zip(bars, (ours, plain), strict=True):
        axis.annotate(f"{value:,.{digits}f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=9)  # fmt: skip
    better = ours / plain if higher_better and plain else plain / ours if ours else 0
    axis.set_title(f"{title}\n{better:,.1f}× {'faster' if higher_better else 'less'}", fontsize=9)
    axis.spines[["top", "right"]].set_visible(False)
    axis.tick_params(labelsize=8)
    target = series.metric.target
    if target is not None and target.on == "ours":
        axis.axhline(target.value, color="#d62728", linestyle="--", linewidth=1)
        axis.annotate(f"target {target.text}", (1.45, target.value), ha="right", va="bottom", fontsize=7,
                      color="#d62728")  # fmt: skip
