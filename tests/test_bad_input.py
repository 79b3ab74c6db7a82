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
    (C, "--workers", "2", "--queue", "q", "--threads", "0"),
    (C, "--workers", "2", "--queue", "q", "--threads", "33"),
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
    # numbers are whole or they are refused, whatever their spelling
    (P, "--task", "sleep", "--count", "1.5"),
    (P, "--task", "sleep", "--count", "1,0"),
    (P, "--task", "sleep", "--count", "1e4000"),
    (P, "--task", "sleep", "--count", "١٢"),  # Arabic-Indic digits: Python's int() and \\d take them
    (P, "--task", "sleep", "--every", "１０m"),  # fullwidth digits
    # job ids have RQ's shape, or kill_job.py refuses them before looking
    (JOB, "a b"),
    (JOB, "../../etc/passwd"),
    (JOB, "job:execution"),
    (JOB, ""),
    (JOB, "x" * 129),
    # schedules, delays, retries and batches
    (P, "--task", "sleep", "--in", "soon"),
    (P, "--task", "sleep", "--in", "0s"),
    (P, "--task", "sleep", "--in", "400d"),
    (P, "--task", "sleep", "--at", "2001-01-01T00:00"),
    (P, "--task", "sleep", "--at", "tomorrow"),
    (P, "--task", "sleep", "--in", "1m", "--at", "2099-01-01T00:00"),
    (P, "--task", "sleep", "--every", "0s"),
    (P, "--task", "sleep", "--every", "ten minutes"),
    (P, "--task", "sleep", "--cron", "* * *"),
    (P, "--task", "sleep", "--cron", "61 * * * *"),
    (P, "--task", "sleep", "--every", "1m", "--cron", "* * * * *"),
    (P, "--task", "sleep", "--every", "1m", "--in", "1m"),
    (P, "--task", "sleep", "--every", "1m", "--wait"),
    (P, "--task", "sleep", "--every", "1m", "--name", "a b"),
    (P, "--task", "sleep", "--name", "nightly"),
    (P, "--task", "count_primes", "--split", "2", "--in", "1m"),
    (P, "--task", "sleep", "--retry-interval", "10"),
    (P, "--task", "sleep", "--retries", "2", "--retry-interval", "10,x"),
    (P, "--task", "sleep", "--retries", "2", "--retry-interval", "-1"),
    (P, "--task", "sleep", "--retries", "2", "--retry-interval", ""),
    (P, "--batch", "xyz"),
    (P, "--batch", "0123456789ab", "--task", "sleep"),
    (P, "--batches", "--schedules"),
    (P, "--unschedule", "a b"),
]

#: Broker URLs that cannot work, whatever the entry point: usage errors (exit 2), named in one
#: sentence with the password masked, before anything is started or contacted.
BAD_URLS = [
    "redis://:sekrit@127.0.0.1:abc/0",  # a port that is not a number
    "redis://:sekrit@[::1/0",  # an IPv6 literal left open
    "redis://:sekrit@127.0.0.1:99999/0",  # a port out of range
    "redis://:sekrit@127.0.0.1:0/0",
    "http://:sekrit@127.0.0.1:6379/0",  # not a broker scheme
    "127.0.0.1:6379",  # no scheme at all
    "redis://127.0.0.1:6379/zero?password=sekrit",  # a database that is not a number
    "redis://127.0.0.1:6379/0?socket_timeout=soon&password=sekrit",
    "redis://127.0.0.1:6379/0?frobnicate=1&password=sekrit",  # a setting redis-py does not have
    "redis://127.0.0.1:6379/0?decode_responses=1",  # one it has but the workbench cannot work with
    "redis://127.0.0.1:6379/0?ssl_password=sekrit",  # a TLS setting on a plain connection
    "rediss://127.0.0.1:6379/0?ssl_cert_reqs=sometimes&password=sekrit",
    "redis://:sekrit@bad\x9bhost:6379/0",  # a host name no resolver can take (IDNA refuses it)
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


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_broker_url_is_a_usage_error_naming_it_masked(cli, url):
    result = cli(P, "--task", "sleep", "--redis-url", url)
    assert_one_sentence(result, 2)
    assert "sekrit" not in result.stderr and "the broker URL" in result.stderr


@pytest.mark.parametrize("argv", EVERY_ENTRY_POINT, ids=lambda argv: argv[0])
def test_an_empty_redis_url_flag_is_a_usage_error_not_the_default_broker(cli, argv):
    result = cli(*argv, "--redis-url", "")  # an unset shell variable: `--redis-url "$URL"`
    assert_one_sentence(result, 2)
    assert "--redis-url" in result.stderr and "not an empty string" in result.stderr


@pytest.mark.parametrize("argv", [*EVERY_ENTRY_POINT[:-1], (D, "--port", "1")], ids=lambda argv: argv[0])
def test_every_entry_point_refuses_a_malformed_url_from_the_environment(cli, argv):
    for url in ("redis://:sekrit@127.0.0.1:abc/0", "redis://:sekrit@[::1/0"):
        result = cli(*argv, REDIS_URL=url)
        assert_one_sentence(result, 2)
        assert "sekrit" not in result.stderr and ":****@" in result.stderr


def test_a_malformed_local_port_setting_is_a_usage_error(cli):
    result = cli(P, "--task", "sleep", REDIS_URL="", WORKBENCH_BROKER_PORT="sixty")
    assert_one_sentence(result, 2)
    assert "WORKBENCH_BROKER_PORT" in result.stderr


@pytest.mark.parametrize("script", [P, C, D, LIST, KILL, JOB, "kill_thread/kill_workers.py"])
def test_every_help_lists_the_exit_codes(cli, script):
    result = cli(script, "--help")
    assert result.returncode == 0
    for line in ("0    done", "1    runtime failure", "2    usage error", "130  interrupted (Ctrl-C)"):
        assert line in result.stdout, script
