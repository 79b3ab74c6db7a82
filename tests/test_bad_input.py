"""Every bad input, every entry point: the documented exit code, one sentence on stderr, no
traceback, nothing on stdout, and nothing written to the broker."""

from __future__ import annotations

import time

import pytest

from .support import free_port

P = "producer_main.py"
C = "consumer_main.py"
D = "dashboard_main.py"
LIST, KILL, JOB = "kill_thread/list_workers.py", "kill_thread/kill_workers.py", "kill_thread/kill_job.py"

USAGE = [
    (P, "--task", "nope"),
    (P, "--task", "sleep", "--param", "seconds=nan"),
    (P, "--task", "sleep", "--param", "seconds=inf"),
    (P, "--task", "sleep", "--param", "seconds=1e309"),
    (P, "--task", "sleep", "--param", "seconds=-1"),
    (P, "--task", "sleep", "--param", "seconds=99999"),
    (P, "--task", "sleep", "--param", "seconds=soon"),
    (P, "--task", "sleep", "--param", "naps=1"),
    (P, "--task", "sleep", "--param", "seconds"),
    (P, "--task", "count_primes", "--param", "limit=1"),
    (P, "--task", "count_primes", "--param", "limit=2000000001"),
    (P, "--task", "count_primes", "--param", "limit=1.5"),
    (P, "--task", "scrape", "--param", "url=file:///etc/passwd"),
    (P, "--task", "scrape", "--param", "url=javascript:alert(1)"),
    (P, "--task", "sleep", "--queue", ""),
    (P, "--task", "sleep", "--queue", "a b"),
    (P, "--task", "sleep", "--queue", "<b>q</b>"),
    (P, "--task", "sleep", "--queue", "Queue"),
    (P, "--task", "sleep", "--count", "0"),
    (P, "--task", "sleep", "--count", "10001"),
    (P, "--task", "sleep", "--count", "ten"),
    (P, "--task", "sleep", "--timeout", "-5"),
    (P, "--task", "sleep", "--timeout", "0"),
    (P, "--task", "sleep", "--retries", "-1"),
    (P, "--task", "sleep", "--retries", "11"),
    (P,),
    (P, "--frobnicate"),
    (C, "--workers", "0", "--queue", "q"),
    (C, "--workers", "11", "--queue", "q"),
    (C, "--workers", "-1", "--queue", "q"),
    (C, "--workers", "ten", "--queue", "q"),
    (C, "--workers", "2", "--queue", "a b"),
    (C, "--workers", "2", "--queue", "q", "--max-jobs", "0"),
    (C, "--queue", "q"),
    (C, "--workers", "2"),
    (LIST, "--frobnicate"),
    (KILL,),
    (KILL, "--all", "--name", "x"),
    (KILL, "--all", "--grace", "-1"),
    (JOB,),
    (D, "--port", "0"),
    (D, "--port", "70000"),
    (D, "--port", "http"),
    (D, "--bind", "0.0.0.0"),
]

RUNTIME = [
    (KILL, "--name", "nobody"),
    (KILL, "--queue", "empty"),
    (KILL, "--queue", "a b"),  # any name: plain rq workers elsewhere may use names we would refuse
    (JOB, "no-such-job"),
]

EVERY_ENTRY_POINT = [
    (P, "--task", "sleep"),
    (C, "--workers", "1", "--queue", "q"),
    (LIST,),
    (KILL, "--all"),
    (JOB, "some-job"),
    (D, "--port", "0"),
]


def assert_one_sentence(result, code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr


@pytest.mark.parametrize("argv", USAGE, ids=lambda argv: " ".join(argv)[:60])
def test_usage_errors_exit_2_with_one_sentence_and_nothing_enqueued(cli, conn, argv):
    assert_one_sentence(cli(*argv), 2)
    assert conn.dbsize() == 0


@pytest.mark.parametrize("argv", RUNTIME, ids=lambda argv: " ".join(argv))
def test_runtime_refusals_exit_1_with_one_sentence(cli, conn, argv):
    assert_one_sentence(cli(*argv), 1)
    assert conn.dbsize() == 0


@pytest.mark.parametrize("argv", EVERY_ENTRY_POINT[:-1], ids=lambda argv: argv[0])
def test_every_entry_point_with_the_broker_down_exits_1_within_5_s(cli, argv):
    url = f"redis://:pa55word@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = cli(*argv, REDIS_URL=url)
    assert time.monotonic() - started < 5
    assert_one_sentence(result, 1)
    assert "pa55word" not in result.stderr and ":****@" in result.stderr


def test_dashboard_with_the_broker_down_exits_1_within_5_s(cli):
    url = f"redis://:pa55word@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = cli(D, "--port", str(free_port()), REDIS_URL=url)
    assert time.monotonic() - started < 5
    assert_one_sentence(result, 1)
    assert "pa55word" not in result.stderr and ":****@" in result.stderr
