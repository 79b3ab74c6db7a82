"""The producer's menu through a real pseudo-terminal, as a person would use it."""

from __future__ import annotations

import re
import sys

import pexpect

from workbench import batches, schedules
from workbench.broker import start_embedded, stop_embedded
from workbench.jobs import make_queue

from .support import ROOT, free_port, wait_for

TASK = "Task (number or name)"


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


def one_sleep(child: pexpect.spawn, seconds: str) -> None:
    """Answer the questions up to "Run it" for one sleep on the default queue, with default options."""
    answer(child, TASK, "sleep")
    answer(child, "seconds —", seconds)
    answer(child, "Queue ", "")
    answer(child, "How many copies", "1")
    answer(child, "Change the timeout or retries?", "")


def ended(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in child.before
    return child.exitstatus if child.exitstatus is not None else 128 + child.signalstatus


def test_menu_goes_back_reasks_splits_waits_and_returns_to_the_task_list(env, conn, consumer, broker_url):
    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2)
    child = spawn(env)
    child.expect_exact(f"Using the Valkey at {broker_url} (from REDIS_URL); not started by the workbench.")
    child.expect_exact("Workers listening: queue_one 2")
    child.expect_exact("limit: int, default")
    reask(child, TASK, "primes", "unknown task 'primes' (did you mean count_primes?); choose one of:")
    answer(child, TASK, "COUNT_PRIMES")  # names are case-insensitive
    answer(child, "limit —", "b")  # back to the task question
    answer(child, TASK, "count_primes")
    reask(child, "limit —", "1e309", "limit must be a whole number from 2 to 2,000,000,000, not '1e309'.")
    reask(child, "limit —", "1.5", "limit must be a whole number from 2 to 2,000,000,000, not '1.5'.")
    answer(child, "limit —", "1,000,000")  # as the console prints numbers
    answer(child, "start —", "b")  # back one question: limit again, then on
    answer(child, "limit —", "1e6")
    answer(child, "start —", "")
    reask(child, "parallel chunks", "0", "split must be a whole number from 1 to 64")
    answer(child, "parallel chunks", "4")
    child.expect_exact("queue_one (0 queued, 2 workers)")
    reask(child, "Queue ", "Bad Queue", "queue name 'Bad Queue' is not allowed")
    answer(child, "Queue ", "")  # the default is the queue the workers serve
    answer(child, "Change the timeout or retries?", "")
    child.expect(r"Batch ([0-9a-f]{12}): enqueued 5 × count_primes split into 4 chunks \+ 1 combining job")
    batch_id = child.match.group(1)
    answer(child, "Wait for the results?", "y")
    answer(child, "to compare?", "n")
    child.expect_exact("5 of 5 finished")
    child.expect_exact("jobs ran at once on average · ")
    child.expect_exact("primes in [0, 1,000,000): 78,498 from 4 chunks")
    # Back at the task list, not out of the program: a plain batch, with numbers as people write them.
    child.expect_exact("Workers listening: queue_one 2")
    answer(child, TASK, "sleep")
    answer(child, "seconds —", "0.2")
    answer(child, "Queue ", "")
    reask(child, "How many copies (1-10,000)", "10001", "count must be a whole number from 1 to 10,000, not 10,001.")
    answer(child, "How many copies (1-10,000)", "3e0")
    answer(child, "Change the timeout or retries?", "y")
    answer(child, "Timeout in seconds", "30")
    answer(child, "Retries on failure", "2")
    answer(child, "before each retry", "1,2")
    answer(child, "Run it", "")
    answer(child, "Wait for the results?", "")  # yes: workers serve the queue
    child.expect_exact("done 3 · failed 0 · of 3")  # the live bar's last state
    child.expect_exact("3 of 3 finished")
    answer(child, TASK, "q")
    assert ended(child) == 0
    assert "speed-up" not in child.before
    assert make_queue("queue_one", conn).finished_job_registry.count == 8
    assert batches.load(conn, batch_id).count == 5
    job = make_queue("queue_one", conn).finished_job_registry.get_job_ids()
    sleeps = [make_queue("queue_one", conn).fetch_job(job_id) for job_id in job]
    retried = [j for j in sleeps if j and j.meta.get("task") == "sleep"]
    assert {(j.timeout, j.retries_left, tuple(j.retry_intervals)) for j in retried} == {(30, 2, (1, 2))}


def test_an_unserved_queue_is_confirmed_first_and_ctrl_d_quits(env, conn):
    child = spawn(env)
    answer(child, TASK, "sleep")
    answer(child, "seconds —", "")
    answer(child, "Queue ", "lonely")
    answer(child, "Enqueue on lonely anyway?", "")  # no: ask for the queue again
    answer(child, "Queue ", "lonely")
    answer(child, "Enqueue on lonely anyway?", "y")
    answer(child, "How many copies (1-10,000)", "2")
    answer(child, "Change the timeout or retries?", "n")
    answer(child, "Run it", "now")
    child.expect_exact("enqueued 2 × sleep on lonely")
    child.expect_exact(
        "no worker listens on lonely; start one with: python consumer_main.py --workers 4 --queue lonely"
    )
    child.expect(r"Wait for the results\? \S*\[y/n\]\S* \S*\(n\)")
    child.send("\r")
    child.expect_exact("Workers listening: lonely 0")
    child.expect_exact(TASK)
    child.sendeof()
    assert ended(child) == 0
    assert make_queue("lonely", conn).count == 2


def test_ctrl_c_while_waiting_detaches_and_the_batch_can_be_reattached(env, conn, consumer, cli):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    child = spawn(env)
    one_sleep(child, "8")  # long enough that the Ctrl-C lands while waiting, however loaded the machine
    answer(child, "Run it", "")
    child.expect(r"Batch ([0-9a-f]{12}): enqueued")
    batch_id = child.match.group(1)
    answer(child, "Wait for the results?", "y")
    child.expect_exact("running 1")
    child.sendintr()  # detach: the job goes on
    child.expect_exact(f"Stopped waiting; batch {batch_id} goes on. Re-attach with: python producer_main.py "
                       f"--batch {batch_id} --wait")  # fmt: skip
    child.expect_exact(TASK)  # back at the menu
    child.sendintr()  # Ctrl-C at a question quits: interrupted
    assert ended(child) == 130
    again = cli("producer_main.py", "--batch", batch_id, "--wait")  # from another terminal
    assert again.returncode == 0, again.stderr
    assert f"Batch {batch_id}: 1 × sleep on queue_one" in again.stderr
    assert "1 of 1 finished" in again.stdout and "slept_s=8" in again.stdout


def test_later_and_repeatedly_from_the_menu_really_fire_on_a_running_consumer(env, conn, consumer, cli):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    child = spawn(env)
    one_sleep(child, "0")
    answer(child, "Run it", "later")
    answer(child, "In how long, or at what time?", "b")  # back to "now / later / repeatedly"
    answer(child, "Run it", "l")  # a unique prefix will do
    reask(child, "In how long, or at what time?", "soonish", "the delay must be a duration")
    answer(child, "In how long, or at what time?", "2s")
    child.expect(r"Batch ([0-9a-f]{12}): enqueued 1 × sleep on queue_one for .* \(in 2s\)")
    delayed = child.match.group(1)
    one_sleep(child, "0")
    answer(child, "Run it", "repeatedly")
    reask(child, "How often?", "0s", "the period must be a duration from 1s")
    answer(child, "How often?", "1s")
    answer(child, "Name of the schedule", "tick")
    child.expect_exact("Schedule tick: 1 × sleep every 1s on queue_one")
    answer(child, TASK, "q")
    assert ended(child) == 0
    [job_id] = batches.load(conn, delayed).job_ids
    wait_for(lambda: make_queue("queue_one", conn).fetch_job(job_id).get_status() == "finished", "the delayed job")
    wait_for(lambda: schedules.load_all(conn)[0][0].fired >= 3, "the periodic schedule to fire three times")
    listed = cli("producer_main.py", "--schedules")
    assert re.search(r"tick .* sleep .* every 1s", listed.stdout), listed.stdout
    removed = cli("producer_main.py", "--unschedule", "tick")
    assert removed.returncode == 0 and "Removed the schedule tick" in removed.stderr
    assert schedules.load_all(conn) == ([], [])


def test_flags_skip_their_prompts_and_bad_flags_stop_before_any(env, conn):
    child = spawn(env, "--queue", "a b")
    child.expect_exact("queue name 'a b' is not allowed")
    assert ended(child) == 2
    child = spawn(env, "--queue", "flagged", "--count", "2", "--param", "seconds=0", "--timeout", "5", "--retries", "0")
    answer(child, TASK, "sleep")
    answer(child, "Enqueue on flagged anyway?", "y")  # nobody serves it: confirmed first
    answer(child, "Run it", "")
    child.expect_exact("enqueued 2 × sleep on flagged")  # no seconds, queue, count or options question
    answer(child, "Wait for the results?", "q")
    assert ended(child) == 0
    assert make_queue("flagged", conn).count == 2


def test_broker_gone_at_enqueue_time_is_exit_1_and_never_queued(env, tmp_path):
    port, folder = free_port(), tmp_path / "doomed"
    start_embedded(port, folder)
    try:
        child = spawn(env, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        answer(child, TASK, "sleep")
        answer(child, "seconds —", "0")
        answer(child, "Queue ", "")
        answer(child, "Enqueue on queue_one anyway?", "y")
        answer(child, "How many copies (1-10,000)", "5")
        answer(child, "Change the timeout or retries?", "")
        child.expect_exact("Run it")
    finally:
        stop_embedded(folder)
    child.send("\r")
    child.expect_exact(f"error: lost the broker at 127.0.0.1:{port} while")
    assert "Enqueued" not in child.before
    assert ended(child) == 1
