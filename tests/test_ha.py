"""High availability, the fast part: Sentinel URLs everywhere, broker_main's replica and sentinel roles, and
one failover on loopback with a consumer and a producer that never restart.

The same stories across real hosts (a cut link, a replica cut off) are in tests/test_ha_netns.py (`make test-ha`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import redis

from workbench import defaults, sentinel_url
from workbench.broker import check_url, client, mask_url
from workbench.errors import UsageError

from .conftest import stop_process_tree
from .support import ROOT, batch_record, free_port, job_records, wait_for

PASSWORD = "p@ss/w?rd#1"
SECRET = "p%40ss%2Fw%3Frd%231"


# -- Sentinel URLs --------------------------------------------------------------------------------
def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    target = sentinel_url.parse(f"redis+sentinel://:{SECRET}@192.0.2.41:26379,192.0.2.42,[2001:db8::1]:26380/jobs/3")
    assert target.sentinels == (("192.0.2.41", 26379), ("192.0.2.42", 26379), ("2001:db8::1", 26380))
    assert (target.service, target.db, target.password) == ("jobs", 3, PASSWORD)
    assert sentinel_url.parse("redis+sentinel://s1/workbench").db == 0
    # Sentinels with a password of their own (the servers' stays in the userinfo).
    other = sentinel_url.parse(f"redis+sentinel://:{SECRET}@s1/workbench?sentinel_password=x%26y&socket_timeout=3")
    assert (other.password, other.sentinel_password, other.options) == (PASSWORD, "x&y", {"socket_timeout": 3.0})
    # A password holding an unencoded '/', '?' or '#' still reads as a password, as the mask reads it.
    assert sentinel_url.parse("redis+sentinel://user:a/b?c#d@s1:26379/workbench/0").password == "a/b?c#d"


@pytest.mark.parametrize(
    "url",
    [
        f"redis+sentinel://:{SECRET}@s1:26379,s2:26379/workbench/0",
        "redis+sentinel://admin:p@ss/w?rd#1@s1:26379/workbench/0",
        f"redis+sentinel://s1:26379/workbench/0?password={SECRET}",
    ],
)
def test_sentinel_urls_are_masked_everywhere_they_are_printed(url):
    masked = mask_url(url)
    assert "p@ss" not in masked and "rd#1" not in masked and "p%40ss" not in masked
    assert "****" in masked and "workbench/0" in masked


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://s1:26379", "its path must name the service"),
        ("redis+sentinel:///workbench", "it names no sentinel"),
        ("redis+sentinel://s1:port/workbench", "a sentinel's port is not a number"),
        ("redis+sentinel://s1:70000/workbench", "a sentinel's port must be from 1 to 65535"),
        ("redis+sentinel://s1,2001:db8::1/workbench", "an IPv6 sentinel address goes in brackets"),
        ("redis+sentinel://s1/work bench", "its service name must be one word"),
        ("redis+sentinel://s1/workbench/zero", "the part after the service must be a database number"),
        ("redis+sentinel://s1/workbench?retry=3", "a Sentinel URL takes no 'retry' setting"),
        ("sentinel://s1/workbench", "must start with one of redis://, rediss://, unix://, redis+sentinel://"),
    ],
)
def test_a_malformed_sentinel_url_is_one_usage_sentence_before_anything_is_contacted(cli, url, words):
    secret_url = url.replace("://", f"://:{SECRET}@", 1)
    with pytest.raises(UsageError) as caught:
        check_url(secret_url)
    assert words in str(caught.value)
    done = cli("kill_thread/list_workers.py", "--redis-url", secret_url, timeout=20)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and words in done.stderr and "Traceback" not in done.stderr
    assert "p%40ss" not in done.stderr and "p@ss" not in done.stderr


def test_no_sentinel_answering_is_one_runtime_sentence(cli):
    url = f"redis+sentinel://:{SECRET}@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/workbench/0"
    done = cli("kill_thread/list_workers.py", "--redis-url", url, timeout=30)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "no primary found through the sentinels" in line and "none of them answered" in line
    assert "p%40ss" not in line and "Traceback" not in done.stderr


# -- broker_main roles ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--sentinel",), "--sentinel needs --monitor HOST:PORT"),
        (("--monitor", "127.0.0.1:6379"), "--monitor is a sentinel's setting, so it needs --sentinel"),
        (("--replica-of", "127.0.0.1"), "--replica-of needs HOST:PORT such as 192.0.2.11:6379"),
        (("--replica-of", "2001:db8::1:6379"), "--replica-of needs HOST:PORT"),
        (("--sentinel", "--monitor", "127.0.0.1:6379", "--quorum", "0"), "--quorum must be"),
        (("--sentinel", "--monitor", "127.0.0.1:6379", "--service", "a b"), "--service must be one word"),
        (("--sentinel", "--replica-of", "127.0.0.1:6379"), "not allowed with argument"),
        (("--sentinel", "--monitor", "127.0.0.1:6379", "--bind", "0.0.0.0"), "makes the sentinel reachable"),
        # digits are ASCII digits: str.isdigit() and regex \d also take '١٢' (12) and '²' (int() raises)
        (("--replica-of", "127.0.0.1:²"), "--replica-of needs HOST:PORT"),
        (("--port", "١٢"), "--port must be a whole number from 1 to 65,535, not '١٢'"),
        (("--sentinel", "--monitor", "127.0.0.1:١٢"), "--monitor needs HOST:PORT"),
    ],
)
def test_broker_main_refuses_bad_high_availability_flags(cli, tmp_path, args, words):
    folder = tmp_path / "never"
    done = cli("broker_main.py", *args, "--data-dir", str(folder), BROKER_PASSWORD="")
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not folder.exists()


class LoopbackHa:
    """broker_main.py as a primary, a replica and three sentinels, all on 127.0.0.1, with a password."""

    def __init__(self, env: dict, tmp) -> None:
        self.env = {**env, defaults.ENV_BROKER_PASSWORD: PASSWORD}
        self.tmp = tmp
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen] = {}
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url = f"redis+sentinel://:{SECRET}@{hosts}/workbench/0"

    def start(self, name: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "broker_main.py", "--data-dir", str(self.tmp / name), *args],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        return process

    def start_all(self) -> None:
        primary = f"127.0.0.1:{self.primary_port}"
        self.start("primary", "--port", str(self.primary_port))
        self.start("replica", "--port", str(self.replica_port), "--replica-of", primary)
        for number, port in enumerate(self.sentinel_ports, 1):
            self.start(f"sentinel{number}", "--sentinel", "--monitor", primary, "--port", str(port))
        wait_for(self.ready, "the sentinels to know the primary, its replica and each other", 60, 0.25)

    def sentinel(self, port: int) -> redis.Redis:
        return client(f"redis://:{SECRET}@127.0.0.1:{port}/0", socket_timeout=1)

    def ready(self) -> bool:
        try:
            states = [self.sentinel(port).sentinel_master("workbench") for port in self.sentinel_ports]
        except redis.RedisError:
            return False
        return all(s["num-slaves"] == 1 and s["num-other-sentinels"] == 2 for s in states)

    def primary_now(self) -> int | None:
        try:
            ports = {self.sentinel(port).sentinel_master("workbench")["port"] for port in self.sentinel_ports}
        except redis.RedisError:
            return None
        return ports.pop() if len(ports) == 1 else None

    def server_pid(self, name: str) -> int:
        [child] = psutil.Process(self.processes[name].pid).children()
        return child.pid

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process_tree(process)


@pytest.fixture
def loopback_ha(env, tmp_path):
    cluster = LoopbackHa(env, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_replica_and_sentinels_start_from_the_same_binary_and_say_what_clients_use(loopback_ha):
    loopback_ha.start_all()
    sentinel = loopback_ha.processes["sentinel1"]
    replica = loopback_ha.processes["replica"]
    loopback_ha.stop()
    out, err = sentinel.communicate(timeout=20)
    port = loopback_ha.sentinel_ports[0]
    assert out.strip() == f"REDIS_URL=redis+sentinel://:****@127.0.0.1:{port}/workbench/0"
    assert f"watching the primary 127.0.0.1:{loopback_ha.primary_port} as service workbench (quorum 2" in err
    assert PASSWORD not in out + err and SECRET not in out + err
    conf = loopback_ha.tmp / "sentinel1" / "sentinel.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"  # it holds the password
    out, err = replica.communicate(timeout=20)
    assert out == "" and f"copying the primary 127.0.0.1:{loopback_ha.primary_port}" in err

    # Restarted, a sentinel keeps what it learned (its id and the replica it found), not a fresh start.
    learned = conf.read_text()
    assert "sentinel myid" in learned and "known-replica" in learned
    again = loopback_ha.start("sentinel1", "--sentinel", "--monitor", "127.0.0.1:1", "--port", str(port))
    _, err = again.stderr.readline(), None
    state = loopback_ha.sentinel(port).sentinel_master("workbench")
    assert state["port"] == loopback_ha.primary_port  # the saved primary, not the one given this time
    assert learned.split("sentinel myid ")[1][:40] in conf.read_text()


@pytest.mark.ha  # a real failover takes its time (down-after, election): with `make test-ha`, not in every run
def test_consoles_on_a_sentinel_url_follow_a_failover_without_a_restart(loopback_ha, consumer, cli):
    loopback_ha.start_all()
    url = loopback_ha.url
    worker_env = {"REDIS_URL": url, "WORKBENCH_BROKER_PORT": str(free_port())}
    started = consumer("--workers", "2", "--queue", "ha", **worker_env)
    before = cli("producer_main.py", "--task", "sleep", "--param", "seconds=1", "--count", "6", "--queue", "ha",
                 "--json", REDIS_URL=url)  # fmt: skip
    assert before.returncode == 0, before.stderr
    assert batch_record(before.stdout)["durable"] is True
    waiter = subprocess.Popen(
        [sys.executable, "producer_main.py", "--task", "sleep", "--param", "seconds=2", "--count", "4", "--queue",
         "ha", "--wait", "--json"],
        cwd=ROOT, env={**loopback_ha.env, "REDIS_URL": url}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.5)  # some of its jobs running
    os.kill(loopback_ha.server_pid("primary"), signal.SIGKILL)
    wait_for(lambda: loopback_ha.primary_now() == loopback_ha.replica_port, "the replica's promotion", 30, 0.25)

    out, err = waiter.communicate(timeout=120)  # it rode out the failover and saw every job finish
    assert waiter.returncode == 0, (err, _consumer_output(started))
    assert {row["status"] for row in job_records(out)} == {"finished"}
    after = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--count", "3", "--queue", "ha",
                "--wait", "--json", REDIS_URL=url)  # fmt: skip
    assert after.returncode == 0, after.stderr
    assert started.poll() is None, _consumer_output(started)  # the same consumer, never restarted
    listed = cli("kill_thread/list_workers.py", "--json", REDIS_URL=url)
    assert listed.returncode == 0, listed.stderr
    assert len([w for w in map(json.loads, listed.stdout.splitlines()) if w["alive"]]) == 2
    new_primary = redis.Redis(port=loopback_ha.replica_port, password=PASSWORD)
    ids = [record["id"] for record in job_records(before.stdout)]
    finished = lambda: all(new_primary.hget(f"rq:job:{i}", "status") == b"finished" for i in ids)  # noqa: E731
    if not wait_for(finished, "every job", 30, fail=False):
        statuses = {i: new_primary.hget(f"rq:job:{i}", "status") for i in ids}
        pytest.fail(f"not every job finished: {statuses}\n{_consumer_output(started)}")


def _consumer_output(process: subprocess.Popen) -> str:
    """What a consumer said (it is stopped to read it all): for a failure's message."""
    stop_process_tree(process)
    return process.stdout.read() if process.stdout else ""
