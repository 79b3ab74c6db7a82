"""Long jobs that survive their worker: real workers interrupted at about two thirds of a long
sha256_chain (kill -9, a cold stop, a janitor recovery, a fencing stop, a frozen worker), and the
re-run carries on from the last checkpoint to the digest an uninterrupted run gives.

"Work done" is read from what the job recorded, never from a clock: the re-run resumed from the
checkpoint taken at fraction f, so it hashed only the remaining (1 - f) of the rounds.

kill -9 and the cold stop run by default; the janitor recovery, the fencing stop and the frozen
host are marked slow (`make test-slow`). The refusal of a stale run's checkpoint write itself is
shown step by step in tests/test_checkpoint.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time

import pytest
import redis
from rq import Retry

from workbench import checkpoint, fencing, progress
from workbench.broker import start_embedded, stop_embedded
from workbench.jobs import fetch_job, make_queue

from .supervision_support import FAST, Output, busy_worker_pid, kill_tree, worker_names
from .support import ROOT, batch_record, child_pids, free_port, job_records, wait_for
from .test_own_tasks import command_shims

CHAIN = "task_def.maths.sha256_chain"
#: ~3 s alone here at the fastest, longer on a busy 2-core machine.
ROUNDS = 8_000_000
DATA = "long job"
#: Interrupt once a checkpoint at or past this fraction is stored: "at about two thirds".
CUT = 0.6
#: Checkpoints every 0.2 s instead of every second (as FAST shortens supervision): whatever the machine's
#: speed, one lands between CUT and two thirds or so, well before the job's end.
CHECKPOINTS = {"WORKBENCH_CHECKPOINT_S": "0.2"}


@pytest.fixture(scope="module")
def uninterrupted_digest() -> str:
    """What an uninterrupted run gives: the chain computed here, once for every story."""
    digest = DATA.encode()
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def enqueue_chain(connection: redis.Redis, queue: str, retries: int = 1):
    return make_queue(queue, connection).enqueue(
        CHAIN, kwargs={"rounds": ROUNDS, "data": DATA}, job_timeout=600, retry=Retry(max=retries)
    )


def saved_fraction(connection: redis.Redis, job_id: str) -> float:
    saved = checkpoint.parse(connection.hget(f"rq:job:{job_id}", checkpoint.FIELD))
    return saved.fraction or 0.0 if saved else 0.0


def wait_for_checkpoint(connection: redis.Redis, job_id: str, at_least: float = CUT) -> float:
    """Wait until the running job stored a checkpoint at `at_least` or more; return its fraction."""
    fraction = wait_for(
        lambda: (f := saved_fraction(connection, job_id)) >= at_least and f, f"a checkpoint at {at_least:.0%}", 60, 0.01
    )
    assert fraction < 1.0 and connection.hget(f"rq:job:{job_id}", "status") == b"started"  # cut mid-run
    return fraction


def stored_generation(connection: redis.Redis, job_id: str) -> int | None:
    saved = checkpoint.parse(connection.hget(f"rq:job:{job_id}", checkpoint.FIELD))
    return saved.generation if saved else None


def assert_resumed_to_the_same_digest(connection: redis.Redis, job_id: str, cut_at: float, digest: str) -> dict:
    wait_for(lambda: connection.hget(f"rq:job:{job_id}", "status") == b"finished", "the re-run to finish", 90)
    job = fetch_job(job_id, connection)
    assert job.return_value()["digest"] == digest  # exactly what an uninterrupted run gives
    resumed = progress.resumed(job.get_meta(refresh=True))
    assert resumed is not None and resumed["times"] == 1, resumed
    # The re-run carried on from the last checkpoint: it hashed only the rounds after it, about a third.
    assert resumed["from"] >= cut_at >= CUT
    assert round((1 - resumed["from"]) * ROUNDS) <= (1 - CUT) * ROUNDS
    assert connection.hget(job.key, checkpoint.FIELD) is None  # a finished job keeps none
    return resumed


def test_worker_killed_9_at_two_thirds_the_retry_resumes_to_the_same_digest(cli, conn, consumer, uninterrupted_digest):
    consumer("--workers", "2", "--queue", "long", wait_workers=2, **CHECKPOINTS)
    sent = cli(
        "producer_main.py", "--task", "sha256_chain", "--param", f"rounds={ROUNDS}", "--param", f"data={DATA}",
        "--queue", "long", "--retries", "1", "--json",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    batch = batch_record(sent.stdout)["batch"]
    [job_id] = [record["id"] for record in job_records(sent.stdout)]
    cut_at = wait_for_checkpoint(conn, job_id)
    os.kill(busy_worker_pid(conn, job_id), signal.SIGKILL)

    # While the retry runs, every view continues from the checkpoint and says it resumed.
    wait_for(lambda: progress.resumed(fetch_job(job_id, conn).get_meta(refresh=True)), "the retry to resume")
    resumed = assert_resumed_to_the_same_digest(conn, job_id, cut_at, uninterrupted_digest)

    again = cli("producer_main.py", "--batch", batch, "--json")
    [row] = job_records(again.stdout)
    assert row["status"] == "finished" and row["resumed"] == resumed
    table = cli("producer_main.py", "--batch", batch)
    assert f"resumed from {resumed['from']:.0%}" in table.stdout


def test_a_cold_stop_at_two_thirds_and_the_next_consumer_resumes(conn, consumer, uninterrupted_digest):
    first = consumer("--workers", "1", "--queue", "long", wait_workers=1, **CHECKPOINTS)
    job = enqueue_chain(conn, "long")
    cut_at = wait_for_checkpoint(conn, job.id)
    for _ in range(2):  # Ctrl-C twice: the job ends "stopped by user" and, with a retry left, is queued again
        first.send_signal(signal.SIGINT)
        time.sleep(0.05)
    first.wait(20)
    assert conn.hget(job.key, "status") == b"queued"
    assert saved_fraction(conn, job.id) >= cut_at
    consumer("--workers", "1", "--queue", "long", **CHECKPOINTS)
    assert_resumed_to_the_same_digest(conn, job.id, cut_at, uninterrupted_digest)


@pytest.mark.slow
def test_a_consumer_killed_9_its_job_recovered_by_another_consumers_janitor_resumes(
    conn, consumer, uninterrupted_digest
):
    lost = consumer("--workers", "1", "--queue", "long", wait_workers=1, **FAST, **CHECKPOINTS)
    job = enqueue_chain(conn, "long")
    cut_at = wait_for_checkpoint(conn, job.id)
    kill_tree(lost.pid)  # the worker, then its consumer: only another consumer's janitor can recover the job
    other = consumer("--workers", "1", "--queue", "long", **FAST, **CHECKPOINTS)
    output = Output(other)
    output.wait_for("failed or re-queued abandoned job(s)", 30)
    assert_resumed_to_the_same_digest(conn, job.id, cut_at, uninterrupted_digest)


@pytest.mark.slow
def test_a_worker_fenced_off_at_two_thirds_its_retry_resumes(consumer, tmp_path, uninterrupted_digest):
    """The broker frozen (SIGSTOP) looks to the worker exactly like a cut link: its lease runs out, it stops the job."""
    port, folder = free_port(), tmp_path / "frozen"
    pid = start_embedded(port, folder)
    try:
        own = redis.Redis(port=port)
        timings = {"WORKBENCH_LIVENESS_TTL_S": "5", "WORKBENCH_HEARTBEAT_S": "0.5", "WORKBENCH_JANITOR_S": "0.5",
                   **CHECKPOINTS}  # fmt: skip
        process = consumer("--workers", "1", "--queue", "long", REDIS_URL=f"redis://127.0.0.1:{port}/0", **timings)
        output = Output(process)
        wait_for(lambda: own.scard("rq:workers") == 1, "the worker")
        job = enqueue_chain(own, "long")
        cut_at = wait_for_checkpoint(own, job.id)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(fencing.timings(timings).lease + 0.8)  # the lease runs out; the key cannot lapse yet
        os.kill(pid, signal.SIGCONT)
        output.wait_for("so that no other host runs them at the same time")
        assert_resumed_to_the_same_digest(own, job.id, cut_at, uninterrupted_digest)
    finally:
        os.kill(pid, signal.SIGCONT)
        stop_embedded(folder)


@pytest.mark.slow
def test_a_frozen_workers_late_checkpoint_is_refused_and_the_re_run_wins(conn, consumer, uninterrupted_digest):
    """A host frozen as a whole (a paused VM) cannot fence itself; when it thaws, its writes meet a newer run."""
    frozen_side = consumer("--workers", "1", "--queue", "long", wait_workers=1, **FAST, **CHECKPOINTS)
    frozen_log = Output(frozen_side)
    job = enqueue_chain(conn, "long")
    wait_for_checkpoint(conn, job.id, 0.2)
    frozen = busy_worker_pid(conn, job.id)
    [frozen_name] = worker_names(conn)
    paused = [frozen_side.pid, frozen]  # the consumer and its worker, as a paused VM
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        consumer("--workers", "1", "--queue", "long", **FAST, **CHECKPOINTS)  # its janitor recovers, its worker resumes
        wait_for(lambda: progress.resumed(fetch_job(job.id, conn).get_meta(refresh=True)), "the re-run to resume", 30)
        rerun = fencing.generation(conn, job.id)
        wait_for(lambda: stored_generation(conn, job.id) == rerun, "the re-run's own first checkpoint", 30)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    frozen_log.wait_for("this run's late outcome was not written", 30)
    # The thawed run's writes met a newer run generation: the checkpoint stays the re-run's own
    # (or is gone, once the re-run finished), never the stale run's.
    assert stored_generation(conn, job.id) in (rerun, None)
    wait_for(lambda: conn.hget(job.key, "status") == b"finished", "the re-run to finish", 90)
    finished = fetch_job(job.id, conn)
    assert finished.return_value()["digest"] == uninterrupted_digest
    assert finished.latest_result().worker_name != frozen_name  # the re-run's result, never the thawed worker's
    assert conn.hget(job.key, checkpoint.FIELD) is None  # and no late write brought a checkpoint back


# -- the README's "Long jobs" example, run as written -------------------------------------------------
def readme_long_jobs_example() -> tuple[str, str, str]:
    """The README's "Long jobs" section: (module file name, its Python, the shell commands)."""
    section = (ROOT / "README.md").read_text().split("## Long jobs", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shell = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return re.match(r"# (\S+\.py)\n", python).group(1), python, shell


def running_with_a_checkpoint(connection: redis.Redis, queue: str) -> str | None:
    for job_id in make_queue(queue, connection).started_job_registry.get_job_ids(cleanup=False):
        if saved_fraction(connection, job_id) > 0:
            return job_id
    return None


def test_the_readme_long_jobs_example_resumes_after_its_worker_is_killed(env, conn, tmp_path):
    """The README's module and commands, verbatim; its worker killed -9 mid-job, as the README suggests."""
    filename, python, shell = readme_long_jobs_example()
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / filename).write_text(python)
    shims = command_shims(tmp_path / "bin")
    process = subprocess.Popen(
        ["bash", "-e", "-c", shell],
        cwd=workdir,
        env={**env, "PATH": f"{shims}:{env['PATH']}"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        job_id = wait_for(lambda: running_with_a_checkpoint(conn, "long"), "the job's first checkpoint", 60)
        os.kill(busy_worker_pid(conn, job_id), signal.SIGKILL)
        out, err = process.communicate(timeout=120)
    finally:
        for pid in child_pids(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert re.search(r"finished\s+\(resumed\s+from\s+\d+%\)", out), out
    n = int(re.search(r"--param n=(\d+)", shell).group(1))
    job = fetch_job(job_id, conn)
    assert job.return_value()["sum"] == (n * (n - 1) // 2) ** 2  # sum of k³ for k < n, exactly
    assert progress.resumed(job.get_meta(refresh=True))["times"] == 1
