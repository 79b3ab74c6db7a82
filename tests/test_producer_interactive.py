"""The producer's menu through a real pseudo-terminal, as a person would use it."""

from __future__ import annotations

import sys

import pexpect

from workbench.broker import start_embedded, stop_embedded
from workbench.jobs import make_queue

from .support import ROOT, free_port


def spawn(env: dict[str, str], *args: str, **overrides: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["producer_main.py", *args],
        cwd=str(ROOT),
        env={**env, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", **overrides},
        encoding="utf-8",
        codec_errors="replace",
        timeout=20,
        dimensions=(40, 160),
    )


def answer(child: pexpect.spawn, prompt: str, text: str) -> None:
    child.expect_exact(prompt)
    child.send(text + "\r")


def reask(child: pexpect.spawn, prompt: str, bad: str, sentence: str) -> None:
    answer(child, prompt, bad)
    child.expect_exact(sentence)


def ended(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in child.before
    return child.exitstatus


def test_menu_reasks_splits_enqueues_waits_and_loops(env, conn, consumer, broker_url):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    child = spawn(env)
    child.expect_exact(f"Broker {broker_url} · workers listening: queue_one 2")
    child.expect_exact("count_primes")
    child.expect_exact("limit: int, default")
    reask(child, "Task (number or name; q quits)", "primes", "unknown task 'primes'; choose one of:")
    answer(child, "Task (number or name; q quits)", "count_primes")
    reask(child, "limit —", "1e309", "limit must be a whole number from 2 to 2,000,000,000, not '1e309'.")
    reask(child, "limit —", "-5", "limit must be a whole number from 2 to 2,000,000,000, not -5.")
    answer(child, "limit —", "1000000")
    answer(child, "start —", "")
    reask(child, "parallel chunks", "0", "split must be a whole number from 1 to 64")
    answer(child, "parallel chunks", "4")
    child.expect_exact("queue_one (0 queued, 2 workers)")
    reask(child, "Queue ", "Bad Queue", "queue name 'Bad Queue' is not allowed")
    answer(child, "Queue ", "")
    child.expect_exact("Enqueued 5 × count_primes split into 4 chunks + 1 combining job on queue_one")
    answer(child, "Wait for the results? (y/n)", "y")
    answer(child, "to compare? (y/n)", "n")
    child.expect_exact("Results")
    child.expect_exact("5 of 5 finished")
    child.expect_exact("primes in [0, 1,000,000): 78,498 from 4 chunks")
    # Back at the menu: a plain batch, with a bad count first.
    child.expect_exact("workers listening: queue_one 2")
    answer(child, "Task (number or name; q quits)", "1")
    answer(child, "seconds —", "0.2")
    answer(child, "Queue ", "")
    reask(child, "How many copies (1-10,000)", "10001", "count must be a whole number from 1 to 10,000, not 10,001.")
    answer(child, "How many copies (1-10,000)", "3")
    answer(child, "Wait for the results? (y/n)", "")
    child.expect_exact("done 3 · failed 0 · of 3")  # the live bar's last state
    child.expect_exact("3 of 3 finished")
    child.expect_exact("speed-up")
    answer(child, "Task (number or name; q quits)", "q")
    assert ended(child) == 0
    assert make_queue("queue_one", conn).finished_job_registry.count == 8


def test_no_worker_warning_names_the_command_and_waiting_is_optional(env, conn):
    child = spawn(env)
    answer(child, "Task (number or name; q quits)", "sleep")
    answer(child, "seconds —", "")
    answer(child, "Queue ", "lonely")
    answer(child, "How many copies (1-10,000)", "2")
    child.expect_exact("Enqueued 2 × sleep on lonely")
    child.expect_exact(
        "no worker listens on lonely; start one with: python consumer_main.py --workers 4 --queue lonely"
    )
    child.expect(r"Wait for the results\? \(y/n\) \S*\(n\)")
    child.send("\r")
    child.expect_exact("workers listening: lonely 0")
    child.expect_exact("Task (number or name; q quits)")
    child.sendeof()
    assert ended(child) == 0
    assert make_queue("lonely", conn).count == 2


def test_ctrl_c_and_ctrl_d_at_prompts_exit_0_with_nothing_enqueued(env, conn):
    child = spawn(env)
    answer(child, "Task (number or name; q quits)", "count_primes")
    child.expect_exact("limit —")
    child.sendintr()
    assert ended(child) == 0
    child = spawn(env)
    answer(child, "Task (number or name; q quits)", "sleep")
    answer(child, "seconds —", "1")
    child.expect_exact("Queue ")
    child.sendeof()
    assert ended(child) == 0
    assert conn.dbsize() == 0


def test_flags_skip_their_prompts_and_bad_flags_stop_before_any(env, conn):
    child = spawn(env, "--queue", "a b")
    child.expect_exact("queue name 'a b' is not allowed")
    assert ended(child) == 2
    child = spawn(env, "--queue", "flagged", "--count", "2", "--param", "seconds=0")
    answer(child, "Task (number or name; q quits)", "sleep")
    child.expect_exact("Enqueued 2 × sleep on flagged")  # no seconds, queue or count prompt
    answer(child, "Wait for the results? (y/n)", "q")
    assert ended(child) == 0
    assert make_queue("flagged", conn).count == 2


def test_broker_gone_at_enqueue_time_is_exit_1_and_never_queued(env, tmp_path):
    port, folder = free_port(), tmp_path / "doomed"
    start_embedded(port, folder)
    try:
        child = spawn(env, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        answer(child, "Task (number or name; q quits)", "sleep")
        answer(child, "seconds —", "0")
        answer(child, "Queue ", "")
        child.expect_exact("How many copies (1-10,000)")
    finally:
        stop_embedded(folder)
    child.send("5\r")
    child.expect_exact(f"error: lost the broker at 127.0.0.1:{port} while enqueueing; nothing was queued")
    assert "Enqueued" not in child.before
    assert ended(child) == 1
