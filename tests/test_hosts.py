"""Several machines, the fast part: the broker host's command, worker addresses and --host, run generations.

The same stories across real hosts (network namespaces, a cut link) are in tests/test_hosts_netns.py,
run by `make test-hosts`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq.worker import Worker

from workbench import defaults, fencing
from workbench.broker import start_embedded, stop_embedded
from workbench.control import host_address
from workbench.heartbeat import alive_key
from workbench.jobs import SERIALIZER, fetch_job, make_queue
from workbench.processes import alive

from .supervision_support import Output
from .support import ROOT, child_pids, free_port, wait_for

SLEEP = "task_def.sleep.sleep"


# -- broker_main.py ----------------------------------------------------------------------------
def start_broker(env: dict, *args: str, password: str | None = None) -> subprocess.Popen:
    extra = {defaults.ENV_BROKER_PASSWORD: password} if password else {}
    clean = {k: v for k, v in env.items() if k != defaults.ENV_BROKER_PASSWORD}
    return subprocess.Popen(
        [sys.executable, "broker_main.py", *args],
        cwd=ROOT,
        env={**clean, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def ping(port: int, password: str | None = None) -> bool:
    try:
        return bool(redis.Redis(port=port, password=password, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def broker_host(env):
    """Start broker_main.py as a person would; every one started is stopped (Ctrl-C, then by pid)."""
    started: list[subprocess.Popen] = []

    def start(*args: str, password: str | None = None) -> subprocess.Popen:
        process = start_broker(env, *args, password=password)
        started.append(process)
        return process

    yield start
    for process in started:
        children = child_pids(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--bind", "0.0.0.0"), "set a password in BROKER_PASSWORD first"),
        (("--bind", "192.0.2.1"), "set a password in BROKER_PASSWORD first"),
        (("--bind", "my-laptop"), "--bind needs an IP address"),
        (("--port", "70000"), "--port must be a whole number from 1 to 65,535"),
        (("--port", "0"), "--port must be"),
        (("--verbose",), "unrecognized arguments"),
    ],
)
def test_broker_main_refuses_bad_flags_and_open_binds_without_a_password(cli, tmp_path, args, words):
    folder = tmp_path / "never"
    result = cli("broker_main.py", *args, "--data-dir", str(folder), BROKER_PASSWORD="")
    assert result.returncode == 2
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not folder.exists()  # nothing was started


def test_broker_main_runs_in_the_foreground_keeps_its_data_and_stops_on_ctrl_c(broker_host, tmp_path):
    port, folder = free_port(), tmp_path / "broker-data"
    process = broker_host("--port", str(port), "--data-dir", str(folder))
    wait_for(lambda: ping(port), "the broker to answer")
    connection = redis.Redis(port=port)
    assert connection.config_get("appendonly")["appendonly"] == "yes"
    assert connection.config_get("appendfsync")["appendfsync"] == "everysec"
    assert connection.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert connection.config_get("bind")["bind"] == "127.0.0.1"
    make_queue("kept", connection).enqueue(SLEEP, kwargs={"seconds": 0})
    connection.close()

    second = broker_host("--port", str(free_port()), "--data-dir", str(folder))
    assert second.wait(10) == 1
    assert "another broker already runs with its data in" in second.stderr.read()

    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(15) == 0
    out, err = process.stdout.read(), process.stderr.read()
    assert out.strip() == f"REDIS_URL=redis://127.0.0.1:{port}/0"
    assert "Broker stopped" in err and "Traceback" not in err
    assert not ping(port)

    again = broker_host("--port", str(port), "--data-dir", str(folder))
    wait_for(lambda: ping(port), "the broker to answer again")
    assert make_queue("kept", redis.Redis(port=port)).count == 1  # the append-only file kept the job
    again.send_signal(signal.SIGTERM)
    assert again.wait(15) == 0


def test_broker_main_killed_9_takes_its_server_with_it(broker_host, tmp_path):
    port = free_port()
    process = broker_host("--port", str(port), "--data-dir", str(tmp_path / "broker-data"))
    wait_for(lambda: ping(port), "the broker to answer")
    [server] = child_pids(process.pid)
    process.kill()  # no Ctrl-C, no clean-up code of ours runs
    process.wait(10)
    wait_for(lambda: not alive(server), "its valkey-server to stop with it", 15)
    assert not ping(port)


def test_an_open_broker_needs_its_password_which_is_never_shown(broker_host, tmp_path):
    port, secret = free_port(), 'Pa ss:w@rd/"#'
    process = broker_host("--bind", "0.0.0.0", "--port", str(port), "--data-dir", str(tmp_path / "d"), password=secret)
    wait_for(lambda: ping(port, secret), "the broker to answer with the password")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    for pid in child_pids(process.pid):  # the server's command line does not carry the password
        assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    out, err = process.stdout.read(), process.stderr.read()
    assert secret not in out + err
    urls = out.split()
    assert urls and all(u.startswith("REDIS_URL=redis://:****@") and u.endswith(f":{port}/0") for u in urls)


# -- worker addresses, liveness, --host ---------------------------------------------------------
def test_rq_address_is_reduced_to_the_host_part():
    assert host_address("192.0.2.3:51234") == "192.0.2.3"
    assert host_address("::1:6379") == "::1"
    assert host_address("[2001:db8::1]:6379") == "2001:db8::1"
    assert host_address("unknown") == "?" and host_address(None) == "?"


def test_list_shows_address_and_judges_alive_by_the_liveness_key(cli, conn, consumer):
    consumer("--workers", "2", "--queue", "qh", wait_workers=2)
    names = {w.name for w in Worker.all(connection=conn, serializer=SERIALIZER)}
    wait_for(lambda: all(conn.exists(alive_key(n)) for n in names), "liveness keys")
    idle, other = sorted(names)
    # RQ's own heartbeat of an idle worker can be minutes old; it is still alive.
    conn.hset(f"rq:worker:{idle}", "last_heartbeat", "2020-01-01T00:00:00.000000Z")
    # A workbench worker whose liveness key lapsed (here: withdrawn) is not, whatever RQ says.
    conn.delete(alive_key(other))
    conn.set(alive_key(other) + ":x", 1)  # unrelated key: only the worker's own key counts

    rows = {
        row["name"]: row
        for row in map(json.loads, cli("kill_thread/list_workers.py", "--json").stdout.split("\n")[:-1])
    }
    assert rows[idle]["alive"] is True and rows[idle]["address"] == "127.0.0.1"
    assert rows[idle]["hostname"] == os.uname().nodename
    if not conn.exists(alive_key(other)):  # its next beat may already have restored it
        assert rows[other]["alive"] is False

    piped = cli("kill_thread/list_workers.py")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert "\x1b" not in piped.stdout and "│" not in piped.stdout  # plain text, no table frame
    header = lines[0]
    assert header.split() == [
        "name",
        "host",
        "address",
        "pid",
        "queues",
        "state",
        "alive",
        "current",
        "job",
        "done",
        "failed",
    ]
    for line in lines[1:]:  # every row lines up under the header
        assert line[header.index("address") :].startswith("127.0.0.1")
        assert any(name in line for name in names)


def test_kill_workers_by_host_matches_the_host_name_or_the_address(cli, conn, consumer):
    first = consumer("--workers", "2", "--queue", "qh", wait_workers=2)
    by_name = cli("kill_thread/kill_workers.py", "--host", os.uname().nodename.upper(), "--grace", "20")
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.count("stopped ") == 2 and "at 127.0.0.1" in by_name.stdout
    assert first.wait(20) == 0
    consumer("--workers", "1", "--queue", "qh", wait_workers=1)
    by_address = cli("kill_thread/kill_workers.py", "--host", "127.0.0.1", "--grace", "20")
    assert by_address.returncode == 0, by_address.stderr
    assert by_address.stdout.count("stopped ") == 1
    wait_for(lambda: conn.scard("rq:workers") == 0, "no worker left")


# -- run generations ------------------------------------------------------------------------------
def test_a_run_is_claimed_once_and_a_superseded_run_cannot_write_its_end(conn):
    job = make_queue("qg", conn).enqueue(SLEEP, kwargs={"seconds": 0})
    first, status = fencing.claim(conn, job.id, "w1")
    assert (first, status) == (1, "started")
    assert fencing.claim(conn, job.id, "w2") == (None, "started")  # a second start is refused
    assert fencing.claim(conn, "no-such-job", "w2") == (None, "gone")

    with conn.pipeline() as pipe:  # the run's own end goes through while its generation holds
        fencing.guard(pipe, job.id, first)
        pipe.hset(job.key, "status", "finished")
        pipe.execute()

    fencing.bump(conn, job.id)  # a recovery
    with conn.pipeline() as pipe:
        pipe.hset(job.key, "status", "failed")
        with pytest.raises(fencing.Superseded):
            fencing.guard(pipe, job.id, first)
    assert conn.hget(job.key, "status") == b"finished"

    with conn.pipeline() as pipe:  # a recovery between the check and EXEC: the broker refuses the EXEC
        fencing.guard(pipe, job.id, first + 1)
        pipe.hset(job.key, "status", "late")
        fencing.bump(conn, job.id)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert conn.hget(job.key, "status") == b"finished"


def test_the_lease_relation_holds_for_the_defaults_and_for_shortened_timings():
    for env in (
        {},
        {"WORKBENCH_LIVENESS_TTL_S": "6", "WORKBENCH_HEARTBEAT_S": "1"},
        {"WORKBENCH_LIVENESS_TTL_S": "1.5"},
    ):
        numbers = fencing.timings(env)
        assert numbers.lease + numbers.stop_grace + numbers.margin == pytest.approx(numbers.ttl)
        assert numbers.margin > 0 and numbers.stop_grace > 0
        assert numbers.interval * 3 <= numbers.lease + 1e-9  # a lease spans several beats
    defaults_now = fencing.timings({})
    assert defaults_now.window <= 60  # the promise to the user
    assert defaults_now.blip >= 5  # "a few seconds" of outage stop nothing


def test_a_worker_that_cannot_renew_its_lease_stops_its_job_and_reports_it(conn, consumer, tmp_path):
    """The broker frozen (SIGSTOP) looks to the worker exactly like a cut link: no beat gets through."""
    port, folder = free_port(), tmp_path / "frozen"
    pid = start_embedded(port, folder)
    try:
        own = redis.Redis(port=port)
        url = f"redis://127.0.0.1:{port}/0"
        timings = {"WORKBENCH_LIVENESS_TTL_S": "5", "WORKBENCH_HEARTBEAT_S": "0.5", "WORKBENCH_JANITOR_S": "0.5"}
        process = consumer("--workers", "1", "--queue", "qf", REDIS_URL=url, **timings)
        wait_for(lambda: own.scard("rq:workers") == 1, "the worker")
        job = make_queue("qf", own).enqueue(SLEEP, kwargs={"seconds": 60}, job_timeout=120)
        wait_for(lambda: own.hget(job.key, "status") == b"started", "the job to start")
        os.kill(pid, signal.SIGSTOP)
        # The lease (3 s from the last beat sent) runs out; the key (5 s from its receipt) cannot lapse yet.
        time.sleep(fencing.timings(timings).lease + 0.8)
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: own.hget(job.key, "status") == b"failed", "the stopped job to be failed", 30)
        result = fetch_job(job.id, own).latest_result()
        assert "lost the broker" in (result.exc_string or "")
        wait_for(
            lambda: own.scard("rq:workers") == 1 and own.exists(alive_key(next(iter(_names(own))))),
            "the worker carrying on",
        )
        again = make_queue("qf", own).enqueue(SLEEP, kwargs={"seconds": 0})
        wait_for(lambda: own.hget(again.key, "status") == b"finished", "a job after the outage")
        assert process.poll() is None
    finally:
        os.kill(pid, signal.SIGCONT)
        stop_embedded(folder)


def _names(connection: redis.Redis) -> set[str]:
    return {n.decode().rsplit(":", 1)[-1] for n in connection.smembers("rq:workers")}


def test_a_job_that_ignores_the_fence_ends_with_its_worker_before_the_key_can_lapse(conn, consumer, tmp_path):
    """The fence's backstop: a job still running `stop grace` after the lease ran out dies with its worker."""
    port, folder, markers = free_port(), tmp_path / "frozen", tmp_path / "markers"
    markers.mkdir()
    pid = start_embedded(port, folder)
    try:
        own = redis.Redis(port=port)
        url = f"redis://127.0.0.1:{port}/0"
        timings = {"WORKBENCH_LIVENESS_TTL_S": "5", "WORKBENCH_HEARTBEAT_S": "0.5", "WORKBENCH_JANITOR_S": "0.5"}
        numbers = fencing.timings(timings)
        process = consumer("--workers", "1", "--queue", "qs", script="tests/marker_consumer.py", REDIS_URL=url,
                           **timings)  # fmt: skip
        output = Output(process)
        wait_for(lambda: own.scard("rq:workers") == 1, "the worker")
        job = make_queue("qs", own).enqueue(
            "tests.marker_tasks.stubborn", kwargs={"folder": str(markers), "seconds": 60}, job_timeout=120
        )
        wait_for(lambda: list(markers.glob("*.alive")), "the stubborn job to run")
        runner = int(next(markers.glob("*.start")).name.rsplit(".", 3)[1])
        frozen_at = time.time()
        os.kill(pid, signal.SIGSTOP)  # no beat gets through: the lease runs out, the key cannot lapse yet
        time.sleep(numbers.lease + numbers.stop_grace + numbers.margin / 2)
        assert not alive(runner)  # the worker exited hard, and its job with it...
        last_alive = max(p.stat().st_mtime for p in markers.glob("*.alive"))
        # ...within lease + stop grace of the last beat it could have sent (before the freeze), so
        # before the liveness key (TTL from that beat's receipt) could lapse.
        assert last_alive <= frozen_at + numbers.lease + numbers.stop_grace + 0.2
        os.kill(pid, signal.SIGCONT)
        output.wait_for("did not stop within")
        output.wait_for("died (exited hard: it lost the broker and its job did not stop in time)")
        wait_for(lambda: own.hget(job.key, "status") == b"failed", "the job to be failed", 30)
        assert not list(markers.glob("*.end"))
    finally:
        os.kill(pid, signal.SIGCONT)
        stop_embedded(folder)
