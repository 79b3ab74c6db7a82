"""Rendering a run: the table (stdout, bench/RESULTS.md, the README section) and the per-round values."""

from __future__ import annotations

from pathlib import Path

from .chart import draw
from .metrics import fmt, spread
from .runner import Run

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"

METHOD = """\
- Both sides run against the same private embedded broker, one after the other, on fresh queues; every
  worker is a separate process started the way its users start it: ours with `consumer_main.py --workers N`
  (the Supervisor forks `WorkbenchWorker`s, RQ `SimpleWorker`s), plain RQ as N × `rq worker --serializer
  rq.serializers.JSONSerializer` (fork per job, RQ's default `Job` class). Both run the same catalog
  function (`task_def.sleep.sleep` with `seconds=0` is the no-op job), JSON on both sides. The task and
  workbench modules are byte-compiled first (`PYTHONDONTWRITEBYTECODE` is set on these machines).
- Timings of jobs come from the timestamps RQ writes on both sides (`enqueued_at`, `started_at`,
  `ended_at`); worker start/stop from the bench's clock (polling every 2 ms).
- **enqueue**: ours `workbench.producer.enqueue` (RQ `enqueue_many`, one pipeline per 1,000 jobs);
  plain `Queue.enqueue` in a loop. Wall time of the call(s).
- **no-op jobs/s**: the jobs are queued first, then the workers start with `--burst`; jobs ÷ (last
  `ended_at` − first `started_at`), so process start-up is excluded on both sides.
- **broker commands per no-op job**: one idle worker; its idle traffic counted for 1 s first; then
  the jobs queued and run; every command the broker executed meanwhile (`INFO commandstats`, which
  counts each command a script runs too), less the bench's own polling and the idle baseline, ÷ jobs.
- **no-op jobs/s, pool**: as above with the pool's size of workers (ours one `consumer_main.py
  --workers N`, plain RQ N × `rq worker`, as `rq worker-pool` runs them) and more jobs.
- **latency**: one idle worker; each job enqueued alone after the previous one ended (+10 ms idle);
  `started_at − enqueued_at`; p50 and p99 of each round's samples.
- **sleeps**: the workers already idle; ideal (jobs × seconds ÷ workers) ÷ (last `ended_at` − first `enqueued_at`).
- **CPU-bound**: the same `count_primes` jobs on 1, then 2 idle workers; makespan(1) ÷ makespan(2).
- **fan-out**: on 2 idle workers, one `count_primes(limit)` job, then the range split into 2 jobs with
  `start`/`limit`; makespan(one) ÷ makespan(split); the parts' counts must add up to the single job's.
- **start / stop**: from spawning the processes until that many workers are registered on the queue;
  from SIGINT (warm stop) until every process of the side has exited (ours: workers and supervisor).
- **PSS**: psutil `memory_full_info().pss` summed over every process of the side (ours includes the
  supervising `consumer_main.py`), taken 0.5 s after the sleeps ended: idle, but after each worker ran
  jobs, so a worker that loads the catalog lazily is weighed at its steady size.
- **long jobs** (`bench/resume.py`): checkpointing cost, ours only (plain RQ has none): the resumable
  `sha256_chain` and its twin that does not opt in (`bench.tasks`, the same function, whose checkpoint
  calls do nothing) run one at a time on an idle pool, A B B A; extra CPU time of the consumer and its
  workers while each ran. On this shared 2-vCPU machine one job's time varies by ±20 % from run to run,
  far more than the effect, so that row has no target; the target is on the cost itself: the same job
  run in the bench's process the way a worker runs it (claimed, `CatalogJob.perform`, real fenced
  writes to the broker), every `checkpoint.save` call timed, their share of its run time. **Time
  lost**: the job with one retry on two idle workers, SIGKILL to the process running it (ours: the
  worker; plain RQ: the horse) once its progress passes two thirds; from the kill until the retry's
  progress is back where it was. Ours resumes from its last checkpoint and must end with the
  uninterrupted digest; plain RQ starts again from zero.
- Plain RQ's workers get `-c bench.preload`, a settings module that imports `task_def` in the worker's
  main process, so its horses inherit the catalog instead of importing it (requests)
  for every job; without it plain RQ would pay our catalog's import time per job.
"""


def table(run: Run) -> str:
    lines = [
        "| row | unit | ours | plain RQ | ours ÷ plain | plain-RQ anchor | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for series in run.series:
        m = series.metric
        met = series.met()
        verdict = "—" if met is None else ("yes" if met else "**no**")
        ratio = spread(series.ratios, 2) if series.complete else "—"
        target = m.target.text if m.target else "—"
        lines.append(
            f"| {m.label} | {m.unit or '—'} | {spread(series.ours, m.digits)} | {spread(series.plain, m.digits)} "
            f"| {ratio} | {m.anchor} | {target} | {verdict} |"
        )
    return "\n".join(lines)


def machine_line(run: Run) -> str:
    m = run.machine
    return (
        f"{m.get('date', '?')}: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('os', '?')}, "
        f"Python {m.get('python', '?')}, rq {m.get('rq', '?')}, redis-py {m.get('redis-py', '?')}, "
        f"{m.get('server', '?')}; load average before {m.get('load before', '?')}, after {m.get('load after', '?')}"
    )


def summary(run: Run) -> str:
    rounds = run.sizes.rounds
    missed = [s.metric.label for s in run.series if s.met() is False]
    verdict = "every target met" if not missed else f"missed {len(missed)} target(s): " + "; ".join(missed)
    return (
        f"{rounds} round(s), A/B interleaved (the side measured first alternates each round); cells are "
        f'median (min–max) over rounds; "ours ÷ plain" is the per-round ratio. Took {run.seconds:.0f} s. {verdict}.'
    )


def per_round(run: Run) -> str:
    rounds = run.sizes.rounds
    head = "| row | side | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " |"
    lines = [head, "|---|---|" + "---|" * rounds]
    for series in run.series:
        digits = series.metric.digits
        for side, values in (("ours", series.ours), ("plain RQ", series.plain), ("ratio", series.ratios)):
            cells = [fmt(v, digits if side != "ratio" else 2) for v in values]
            lines.append(f"| {series.metric.key} | {side} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_md(run: Run) -> str:
    return (
        "# Benchmark results\n\n"
        "Written by `make bench` (`python -m bench`); do not edit by hand.\n\n"
        f"Machine: {machine_line(run)}.\n\n"
        f"{summary(run)}\n\n{table(run)}\n\n"
        f"## Per-round values\n\n{per_round(run)}\n\n"
        f"## How each row is measured\n\n{METHOD}"
    )


def readme_section(run: Run) -> str:
    return (
        f"Latest `make bench` ({machine_line(run)}).\n\n"
        f"{summary(run)}\n\n![ours vs plain RQ, this run](docs/bench.png)\n\n{table(run)}\n\n"
        "Per-round values and how each row is measured: [bench/RESULTS.md](bench/RESULTS.md). The machine is "
        "shared with other work while measuring, so figures are noisy; the min–max columns show how much."
    )


def replace_section(text: str, section: str) -> str:
    """`text` with everything between the bench markers replaced by `section`."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_START} … {README_END} section.")
    return text[: start + len(README_START)] + "\n" + section.strip() + "\n" + text[end:]


def write(run: Run, results_path: Path, readme_path: Path | None, chart_path: Path | None = None) -> str | None:
    """Write the results (and the chart, when `chart_path`); return why the chart was not drawn, or None."""
    results_path.write_text(results_md(run))
    skipped = draw(run, chart_path) if chart_path is not None else None
    if readme_path is not None:
        readme_path.write_text(replace_section(readme_path.read_text(), readme_section(run)))
    return skipped
