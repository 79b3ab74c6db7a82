"""The consumer console as a person meets it: prompts in a real terminal, flags, Ctrl-C, burst."""

from __future__ import annotations

import signal
import sys

import pexpect

from workbench.processes import alive

from .supervision_support import Output, enqueue_sleep, failure, status, wait_started, worker_names
from .support import ROOT, child_pids, wait_for

BAD_COUNTS = ["0", "11", "-1", "ten", ""]


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["consumer_main.py", *args],
        cwd=str(ROOT),
        env={**env, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"},
        encoding="utf-8",
        codec_errors="replace",  # the terminal echoes ^C wherever it lands, even inside a character
        timeout=15,
        dimensions=(40, 160),
    )


def test_prompts_reask_then_workers_run_and_one_ctrl_c_stops_them(env, conn):
    enqueue_sleep(conn, 0, queue="urgent")
    enqueue_sleep(conn, 0, queue="urgent")
    child = spawn(env)
    for answer in BAD_COUNTS:
        child.expect_exact("How many workers (1-10)")
        child.send(answer + "\r")
        child.expect_exact("the number of workers must be a whole number from 1 to 10, not ")
    child.expect_exact("How many workers (1-10)")
    child.send("2\r")
    child.expect_exact("Jobs per worker at once (1-32")
    child.send("\r")  # the default: one
    child.expect_exact("urgent (2 queued, 0 workers)")
    child.expect_exact("Queue(s), comma-separated in priority order")
    child.send("Bad Name\r")
    child.expect_exact("is not allowed")
    child.send("urgent, queue_one\r")
    child.expect_exact("Started 2 workers on urgent, queue_one")
    wait_for(lambda: len(worker_names(conn)) == 2, "2 workers registered")
    names = worker_names(conn)
    assert all(".w1." in n or ".w2." in n for n in names)
    child.expect_exact("Workers")  # the live table
    enqueue_sleep(conn, 2, queue="urgent")
    child.expect_exact("busy")
    child.expect(r"\d+%")  # the job's reported progress
    pids = child_pids(child.pid)
    child.sendintr()
    child.expect_exact("Warm stop")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert worker_names(conn) == set()
    assert not any(alive(pid) for pid in pids)


def test_ctrl_d_and_q_at_a_prompt_exit_0(env, conn):
    child = spawn(env)
    child.expect_exact("How many workers")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = spawn(env)
    child.expect_exact("How many workers")
    child.send("3\r")
    child.expect_exact("Jobs per worker at once")
    child.send("1\r")
    child.expect_exact("Queue(s)")
    child.send("q\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert worker_names(conn) == set()


def test_missing_values_without_a_terminal_are_one_sentence_and_exit_2(cli):
    for args, flag in ((["--queue", "queue_one"], "--workers"), (["--workers", "2"], "--queue")):
        result = cli("consumer_main.py", *args)
        assert result.returncode == 2
        assert result.stderr.strip() == f"error: missing {flag}; stdin is not a terminal."
    bad = cli("consumer_main.py", "--workers", "11", "--queue", "queue_one")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_burst_runs_the_queue_dry_then_exits_0(conn, consumer):
    jobs = [enqueue_sleep(conn, 0) for _ in range(6)]
    process = consumer("--workers", "2", "--queue", "queue_one", "--burst")
    out = Output(process).finish()
    assert process.returncode == 0, out
    assert {status(conn, job.id) for job in jobs} == {"finished"}
    assert worker_names(conn) == set()


def test_max_jobs_ends_each_worker_after_n_jobs(conn, consumer):
    jobs = [enqueue_sleep(conn, 0) for _ in range(5)]
    process = consumer("--workers", "2", "--queue", "queue_one", "--max-jobs", "2")
    out = Output(process).finish()
    assert process.returncode == 0, out
    assert sorted(status(conn, job.id) for job in jobs) == ["finished"] * 4 + ["queued"]


def test_warm_then_cold_stop_fails_or_requeues_running_jobs(conn, consumer):
    process = consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    output = Output(process)
    plain = enqueue_sleep(conn, 30)
    retried = enqueue_sleep(conn, 30, retries=1)
    wait_started(conn, plain.id)
    wait_started(conn, retried.id)
    pids = child_pids(process.pid)
    process.send_signal(signal.SIGINT)
    output.wait_for("Warm stop: waiting for running jobs")
    assert status(conn, plain.id) == "started"  # warm: the jobs go on
    process.send_signal(signal.SIGINT)
    out = output.finish()
    assert process.returncode == 0, out
    assert "Cold stop" in out
    assert status(conn, plain.id) == "failed"
    assert "stopped by user" in failure(conn, plain.id)
    assert status(conn, retried.id) == "queued"
    assert worker_names(conn) == set()
    assert not any(alive(pid) for pid in pids)


def test_warm_stop_lets_the_running_job_finish(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    output = Output(process)
    job = enqueue_sleep(conn, 1.5)
    wait_started(conn, job.id)
    process.send_signal(signal.SIGINT)
    out = output.finish()
    assert process.returncode == 0, out
    assert status(conn, job.id) == "finished"
    assert worker_names(conn) == set()
