"""Long jobs: what checkpoints cost, and what an interruption costs with and without resume.

- **checkpointing cost** (ours only: plain RQ has no checkpoints): on an idle pool, the resumable
  `sha256_chain` and its twin that does not opt in (`bench.tasks.sha256_chain_unsaved`, the very same
  function, whose checkpoint calls do nothing) run one at a time, A B B A (B A A B on odd rounds); the
  cost is (CPU time with ÷ CPU time without − 1), the CPU time the consumer and its workers used while
  each job ran (psutil). On a shared 2-vCPU machine one job's time varies by ±20 % from run to run (CPU
  time too: the vCPUs are siblings), far more than the cost, so this A/B has no target. The cost itself:
  the same job run in the bench's own process the way a worker runs it (claimed, `CatalogJob.perform`,
  real fenced writes to the broker), every `checkpoint.save` call timed; their share of its run time
  (target ≤ 2 %).
- **time lost to an interruption**: the same `sha256_chain` with one retry, on two idle workers; when
  its progress passes `kill_at` (two thirds) the process running it is killed with SIGKILL (ours: the
  worker, which runs the job itself; plain RQ: the work horse) and the retry runs on the other worker.
  Time lost = from the kill until the retry's progress is back where the job was when it was killed
  (progress is reported every 0.25 s on both sides). Ours resumes from its last checkpoint (at most
  about a second behind); plain RQ starts again from zero. Both retries must finish, ours with the
  digest of the uninterrupted run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psutil
from redis import Redis
from rq import Retry, Worker
from rq.job import Job

from workbench import checkpoint, fencing
from workbench.jobs import SERIALIZER, fetch_job, make_queue
from workbench.progress import META_KEY
from workbench.progress import read as read_progress

from .records import finished, wait_ended
from .sides import OURS, BenchError, Side, Workers, plain_queue, wait_registered

if TYPE_CHECKING:
    from .rows import Context  # (rows imports this module: the experiment's context is a type here only)

CHAIN = "task_def.maths.sha256_chain"
UNSAVED = "bench.tasks.sha256_chain_unsaved"
#: Our consumers load the twin task from the bench's own module.
TASKS_ENV = {"WORKBENCH_TASKS": "bench.tasks"}


def long_jobs(ctx: Context, side: Side) -> dict[str, float]:
    """{"ckpt_cost": %, "ckpt_share": %, "resume_lost": s} for ours, {"resume_lost": s} for plain RQ."""
    rounds = ctx.sizes.long_rounds
    queue = ctx.queue("long", side)
    group = side.start(ctx.url, queue, 2, ctx.logdir, {**ctx.env, **TASKS_ENV}, burst=False)
    try:
        wait_registered(ctx.conn, queue, 2, group)
        figures: dict[str, float] = {}
        digest = None
        if side.key == OURS:
            order = (CHAIN, UNSAVED, UNSAVED, CHAIN) if ctx.round % 2 == 0 else (UNSAVED, CHAIN, CHAIN, UNSAVED)
            cpu: dict[str, float] = {CHAIN: 0.0, UNSAVED: 0.0}
            for path in order:
                before = _cpu_s(group)
                digest = _run_one(ctx.conn, side, queue, path, rounds)
                cpu[path] += _cpu_s(group) - before
            figures["ckpt_cost"] = (cpu[CHAIN] / cpu[UNSAVED] - 1) * 100
            figures["ckpt_share"] = _share_in_save(ctx.conn, queue, rounds)
        figures["resume_lost"] = _interrupted(ctx, side, queue, rounds, digest)
    finally:
        group.close()
    return figures


def _share_in_save(conn: Redis, queue: str, rounds: int) -> float:
    """The same job run here, the way a worker runs it (claimed, `CatalogJob.perform`, real fenced writes to
    the broker): the share of its run time spent inside `checkpoint.save`, every ask and every write, in %."""
    job_id = make_queue(queue + "-here", conn).enqueue(CHAIN, kwargs={"rounds": rounds, "data": "bench"}).id
    generation, _ = fencing.claim(conn, job_id, "bench")
    job = fetch_job(job_id, conn)
    job.run_generation = generation
    real, spent = checkpoint.save, [0.0]

    def timed(*args: Any, **kwargs: Any) -> bool:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    checkpoint.save = timed  # the task calls checkpoint.save through the module
    try:
        started = time.perf_counter()
        job.perform()
        total = time.perf_counter() - started
    finally:
        checkpoint.save = real
    return spent[0] / total * 100


def _cpu_s(group: Workers) -> float:
    """CPU seconds (user + system) used so far by every live process of the side (consumer and workers)."""
    total = 0.0
    for process in group.tree():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _enqueue(conn: Redis, side: Side, queue: str, path: str, rounds: int, retries: int = 0) -> str:
    kwargs = {"rounds": rounds, "data": "bench"}
    retry = Retry(max=retries) if retries else None
    target = make_queue(queue, conn) if side.key == OURS else plain_queue(queue, conn)
    return target.enqueue(path, kwargs=kwargs, job_timeout=900, retry=retry).id


def _run_one(conn: Redis, side: Side, queue: str, path: str, rounds: int) -> str:
    """One uninterrupted run on an idle pool; its digest."""
    ended = _ended(conn, queue)
    job_id = _enqueue(conn, side, queue, path, rounds)
    wait_ended(conn, queue, ended + 1, timeout_s=900)
    finished(conn, [job_id], side.title)
    return _digest(conn, job_id)


def _interrupted(ctx: Context, side: Side, queue: str, rounds: int, digest: str | None) -> float:
    """Kill the process running the job once it passes kill_at; seconds until the retry is back there."""
    conn = ctx.conn
    ended = _ended(conn, queue)
    job_id = _enqueue(conn, side, queue, CHAIN, rounds, retries=1)
    job = Job(job_id, connection=conn, serializer=SERIALIZER)
    deadline = time.monotonic() + 600
    while (read_progress(job.get_meta(refresh=True)) or 0.0) < ctx.sizes.kill_at:
        if conn.hget(job.key, "status") in (b"finished", b"failed") or time.monotonic() > deadline:
            raise BenchError(f"{side.title}: the job ended before it could be interrupted; use more rounds.")
        time.sleep(0.005)
    _kill_runner(conn, side, job_id)
    killed = time.monotonic()
    last_report = job.get_meta(refresh=True).get(META_KEY)
    at_kill = read_progress(job.meta) or 0.0
    # The killed run's last report stays in the meta until the retry reports (or resumes): wait for that first.
    while job.get_meta(refresh=True).get(META_KEY) == last_report or (read_progress(job.meta) or 0.0) < at_kill:
        if time.monotonic() > deadline:
            raise BenchError(f"{side.title}: the retry did not get back to {at_kill:.0%} within 600 s.")
        time.sleep(0.005)
    lost = time.monotonic() - killed
    wait_ended(conn, queue, ended + 1, timeout_s=900)
    finished(conn, [job_id], side.title)
    if digest is not None and _digest(conn, job_id) != digest:
        raise BenchError(f"{side.title}: the resumed job's digest differs from the uninterrupted run's.")
    return lost


def _digest(conn: Redis, job_id: str) -> str:
    result = Job.fetch(job_id, connection=conn, serializer=SERIALIZER).return_value()
    if not isinstance(result, dict) or "digest" not in result:
        raise BenchError(f"job {job_id} returned no digest: {result!r:.80}.")
    return str(result["digest"])


def _kill_runner(conn: Redis, side: Side, job_id: str) -> None:
    """SIGKILL the process that runs the job: our worker runs it itself, plain RQ's worker in a forked horse."""
    for worker in Worker.all(connection=conn, serializer=SERIALIZER):
        if worker.get_current_job_id() != job_id:
            continue
        process = psutil.Process(worker.pid)
        victims = [process] if side.key == OURS else process.children()
        for victim in victims:
            victim.kill()
        if victims:
            return
    raise BenchError(f"{side.title}: no process was found running the job to interrupt.")


def _ended(conn: Redis, queue: str) -> int:
    """Jobs of `queue` that ended so far (finished or failed registries), as `wait_ended` counts them."""
    probe = plain_queue(queue, conn)
    return int(conn.zcard(probe.finished_job_registry.key)) + int(conn.zcard(probe.failed_job_registry.key))
