"""Checkpoints, the fast part: the task API, its bounds, fenced writes, and exact resumes of the built-in tasks.

Each run here is the job layer's own path (`CatalogJob.perform`, as a worker calls it) on a job
claimed in a real broker (`fencing.claim`, as a worker claims it); the stories with real workers
killed, cold-stopped, recovered and fenced are in tests/test_resume.py.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from rq.job import JobStatus

from task_def import maths, primes
from task_def import sleep as sleep_module
from workbench import checkpoint, defaults, fencing, progress
from workbench.catalog_load import load_catalog
from workbench.errors import CheckpointError
from workbench.jobs import fetch_job, make_queue

from .support import wait_for


class Interrupted(BaseException):
    """Stands in for the worker dying mid-task (not an Exception: nothing in a task may swallow it)."""


def enqueue(conn, task: str, **params):
    spec = load_catalog()[task]
    return make_queue("ckpt", conn).enqueue(spec.func_path, kwargs=params, job_timeout=600)


def start_run(conn, job_id: str, worker: str = "w1"):
    """What a worker does before the task runs: claim the run (generation +1), read the job with its checkpoint."""
    generation, status = fencing.claim(conn, job_id, worker)
    assert status == "started", status
    job = fetch_job(job_id, conn)
    job.run_generation = generation
    return job


def requeue_for_retry(conn, job_id: str) -> None:
    """What a recovery does before a retry: supersede the run, queue the job again."""
    fencing.bump(conn, job_id)
    conn.hset(f"rq:job:{job_id}", "status", JobStatus.QUEUED.value)


def stored(conn, job_id: str) -> checkpoint.Saved | None:
    return checkpoint.parse(conn.hget(f"rq:job:{job_id}", checkpoint.FIELD))


@pytest.fixture
def every_ask_writes(monkeypatch):
    """No throttle, so a short task writes a checkpoint at every step (the throttle has its own test)."""
    monkeypatch.setattr(defaults, "CHECKPOINT_INTERVAL_S", 0.0)


def interrupt_at(monkeypatch, module, fraction: float) -> None:
    """Make the task's progress report kill the run once it passes `fraction` (before that step's checkpoint)."""
    real = module.report

    def report(done: float, note: str = "", **kwargs) -> None:
        real(done, note, **kwargs)
        if done >= fraction:
            raise Interrupted

    monkeypatch.setattr(module, "report", report)


# -- exact resumes --------------------------------------------------------------------------------
CASES = [
    ("sha256_chain", maths, {"rounds": 1_000_000, "data": "resume me"}),
    ("monte_carlo_pi", maths, {"samples": 3_000_000, "seed": 42}),
    ("count_primes", primes, {"limit": 30_000_000, "start": 1_000}),
]


@pytest.mark.parametrize(("task", "module", "params"), CASES, ids=[case[0] for case in CASES])
def test_a_resumed_job_gives_exactly_the_uninterrupted_result(
    conn, monkeypatch, every_ask_writes, task, module, params
):
    uninterrupted = load_catalog()[task].func(**params)  # a plain call: no worker, no checkpoints

    job = enqueue(conn, task, **params)
    with monkeypatch.context() as patch:
        interrupt_at(patch, module, 0.6)
        with pytest.raises(Interrupted):
            start_run(conn, job.id).perform()
    saved = stored(conn, job.id)
    assert saved is not None and 0.3 <= saved.fraction < 0.95, saved  # a checkpoint from the middle of the run

    requeue_for_retry(conn, job.id)
    rerun = start_run(conn, job.id, "w2")
    assert rerun.stored_checkpoint is not None  # read with the job: no extra round trip
    assert rerun.perform() == uninterrupted
    meta = fetch_job(job.id, conn).get_meta(refresh=True)
    assert progress.resumed(meta) == {"times": 1, "from": saved.fraction}
    assert progress.resume_words(meta) == f"resumed from {saved.fraction:.0%}"


def test_the_sha256_chain_is_the_chain_and_resumes_twice(conn, monkeypatch, every_ask_writes):
    rounds, data = 600_000, "workbench"
    digest = data.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    job = enqueue(conn, "sha256_chain", rounds=rounds, data=data)
    for fraction, worker in ((0.3, "w1"), (0.7, "w2")):
        with monkeypatch.context() as patch:
            interrupt_at(patch, maths, fraction)
            with pytest.raises(Interrupted):
                start_run(conn, job.id, worker).perform()
        requeue_for_retry(conn, job.id)
    assert start_run(conn, job.id, "w3").perform()["digest"] == digest.hex()
    resumed = progress.resumed(fetch_job(job.id, conn).meta)
    assert resumed["times"] == 2 and resumed["from"] >= 0.5
    assert progress.resume_words({"resumed": resumed}).startswith("resumed 2×, last from ")


def test_sleep_resumes_with_what_is_left(conn, monkeypatch, every_ask_writes):
    job = enqueue(conn, "sleep", seconds=1.0)
    with monkeypatch.context() as patch:
        interrupt_at(patch, sleep_module, 0.5)
        with pytest.raises(Interrupted):
            start_run(conn, job.id).perform()
    slept = stored(conn, job.id).state["slept_s"]
    assert 0 < slept < 1.0
    requeue_for_retry(conn, job.id)
    rerun = start_run(conn, job.id, "w2")
    result = rerun.perform()
    assert result["slept_s"] >= 1.0  # counts the time slept before the interruption
    assert progress.resumed(rerun.meta)["from"] == pytest.approx(slept, abs=0.01)


def test_a_checkpoint_that_does_not_fit_the_job_starts_it_afresh(conn):
    job = enqueue(conn, "sha256_chain", rounds=1_000, data="x")
    forged = checkpoint.encode({"done": 10**9, "digest": "zz"}, 0.5, None, 1)
    conn.hset(job.key, checkpoint.FIELD, forged)
    assert start_run(conn, job.id).perform() == maths.sha256_chain(rounds=1_000, data="x")
    for junk in (b"not json", b"[1, 2]", b'{"state": 1, "fraction": "a lot"}'):
        assert checkpoint.parse(junk) is None or checkpoint.parse(junk).fraction is None


# -- the API's bounds -------------------------------------------------------------------------------
def run_inside(conn, job_id: str, body) -> object:
    """Run `body` in the checkpoint context of a claimed job, as a resumable task would run."""
    job = start_run(conn, job_id)
    with checkpoint.running(job, job.stored_checkpoint, job.run_generation):
        return body()


def test_a_checkpoint_must_be_json_and_at_most_64_kib(conn, every_ask_writes):
    job = enqueue(conn, "sleep", seconds=0)
    big = {"blob": "x" * defaults.CHECKPOINT_MAX_BYTES}
    with pytest.raises(CheckpointError, match=r"a checkpoint of 65,547 bytes of JSON is over the limit of 65,536"):
        run_inside(conn, job.id, lambda: checkpoint.save(big))
    requeue_for_retry(conn, job.id)
    with pytest.raises(CheckpointError, match="a checkpoint must be JSON"):
        run_inside(conn, job.id, lambda: checkpoint.save({"when": {1, 2}}))
    requeue_for_retry(conn, job.id)
    with pytest.raises(CheckpointError, match="must be JSON"):
        run_inside(conn, job.id, lambda: checkpoint.save({"x": float("nan")}))
    assert conn.hget(job.key, checkpoint.FIELD) is None  # nothing refused was written
    requeue_for_retry(conn, job.id)
    just_fits = {"blob": "x" * (defaults.CHECKPOINT_MAX_BYTES - 11)}
    assert run_inside(conn, job.id, lambda: checkpoint.save(just_fits, fraction=0.25)) is True
    saved = stored(conn, job.id)
    assert saved.state == just_fits and saved.fraction == 0.25 and saved.writes == 1


def test_outside_a_worker_load_is_none_and_save_does_nothing():
    assert checkpoint.load() is None
    assert checkpoint.save({"anything": "at all"}) is False
    assert maths.sha256_chain(rounds=10, data="a") == maths.sha256_chain(rounds=10, data="a")


def test_saves_happen_at_most_once_a_second_however_often_a_task_asks(conn, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(checkpoint, "clock", lambda: clock[0])
    job = enqueue(conn, "sleep", seconds=0)

    def ask_every_millisecond_for_four_and_a_half_seconds() -> int:
        written = 0
        for step in range(4_500):
            clock[0] += 0.001
            written += checkpoint.save({"step": step})
        return written

    written = run_inside(conn, job.id, ask_every_millisecond_for_four_and_a_half_seconds)
    assert written == 4  # at 1, 2, 3 and 4 s into the run (none in the first second)
    assert stored(conn, job.id).writes == 4


# -- fenced writes --------------------------------------------------------------------------------
def test_a_stale_runs_late_checkpoint_is_refused_and_never_lands(conn, every_ask_writes):
    job = enqueue(conn, "sleep", seconds=0)
    stale = start_run(conn, job.id, "cut-off")
    with checkpoint.running(stale, None, stale.run_generation):
        assert checkpoint.save({"by": "cut-off", "n": 1}) is True
        requeue_for_retry(conn, job.id)  # a janitor recovered the job while this worker could not reach the broker
        fresh = start_run(conn, job.id, "re-run")
        with checkpoint.running(fresh, fresh.stored_checkpoint, fresh.run_generation):
            assert checkpoint.load() == {"by": "cut-off", "n": 1}  # the re-run carries on from it
            assert checkpoint.save({"by": "re-run", "n": 2}) is True
        with pytest.raises(fencing.Superseded):  # back in the stale run's task: its next write is refused
            checkpoint.save({"by": "cut-off", "n": 99})
    assert stored(conn, job.id).state == {"by": "re-run", "n": 2}
    assert stored(conn, job.id).generation == fresh.run_generation

    conn.delete(job.key)  # a job deleted while a run still goes on: nothing is recreated
    with checkpoint.running(fresh, None, fresh.run_generation):
        assert checkpoint.save({"late": True}) is False
    assert not conn.exists(job.key)


def test_a_finished_job_keeps_no_checkpoint_and_a_failed_one_keeps_it(conn, consumer):
    queue = make_queue("ckpt-done", conn)
    consumer("--workers", "1", "--queue", "ckpt-done", wait_workers=1)
    path = load_catalog()["sleep"].func_path
    finished = queue.enqueue(path, kwargs={"seconds": 2.5}, job_timeout=60, failure_ttl=defaults.FAILURE_TTL_S)
    wait_for(lambda: conn.hget(finished.key, checkpoint.FIELD), "a checkpoint while the job runs")
    assert json.loads(conn.hget(finished.key, checkpoint.FIELD))["state"]["slept_s"] > 0.5
    wait_for(lambda: conn.hget(finished.key, "status") == b"finished", "the job to finish")
    assert conn.hget(finished.key, checkpoint.FIELD) is None
    assert conn.ttl(finished.key) > 0  # and the job itself expires as before

    failing = queue.enqueue(path, kwargs={"seconds": 30}, job_timeout=2, failure_ttl=defaults.FAILURE_TTL_S)
    wait_for(lambda: conn.hget(failing.key, "status") == b"failed", "the job to time out", 30)
    assert stored(conn, failing.id) is not None  # kept for a requeue, and it expires with the failed job
    assert 0 < conn.ttl(failing.key) <= defaults.FAILURE_TTL_S
