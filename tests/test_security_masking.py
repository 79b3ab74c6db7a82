"""Secrets in broker URLs are masked in every form a URL can carry them, in every output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.broker import mask_url

from .support import ROOT, free_port, wait_for

SECRET = "s3kr1t-pw"

#: (URL, what must still show after masking): each carries SECRET somewhere a password can hide.
URLS = [
    (f"redis://:{SECRET}@db.example:6379/0", "redis://:****@db.example:6379/0"),
    (f"redis://alice:{SECRET}@db.example:6379/0", "redis://alice:****@db.example:6379/0"),
    (f"rediss://:{SECRET}@[2001:db8::1]:6380/2", "rediss://:****@[2001:db8::1]:6380/2"),
    (f"redis://db.example:6379/0?password={SECRET}", "redis://db.example:6379/0?password=****"),
    (f"redis://db.example/0?db=1&password={SECRET}&socket_timeout=5", "?db=1&password=****&socket_timeout=5"),
    (f"rediss://db.example/0?ssl_password={SECRET}&ssl_certfile=/c.pem", "?ssl_password=****&ssl_certfile=/c.pem"),
    (f"redis://db.example/0?%70assword={SECRET}", "?%70assword=****"),  # a percent-encoded name
    (f"redis://db.example/0?PASSWORD={SECRET}", "?PASSWORD=****"),
    (f"redis://db.example/0?password={SECRET}&password={SECRET}", "?password=****&password=****"),
    (f"unix://:{SECRET}@/run/valkey.sock?db=1", "unix://:****@/run/valkey.sock?db=1"),
    # Sentinel-style: several hosts in one netloc, and a sentinel password in the query
    (f"redis+sentinel://:{SECRET}@s1:26379,s2:26379/mymaster/0", "@s1:26379,s2:26379/mymaster/0"),
    (f"redis+sentinel://s1:26379,s2:26379/mymaster?sentinel_password={SECRET}", "?sentinel_password=****"),
    # a password with an unencoded '/', '?' or '#' ends the authority early when parsed
    ("redis://:pa/ss@db.example:6379/0", "****@db.example:6379/0"),
    ("redis://:pa?ss@db.example:6379/0", "****@db.example:6379/0"),
    ("redis://:pa#ss@db.example:6379/0", "****@db.example:6379/0"),
    (f"redis://db.example/0?auth_token={SECRET}", "?auth_token=****"),
]


@pytest.mark.parametrize("url,kept", URLS)
def test_every_credential_a_url_can_carry_is_masked(url, kept):
    masked = mask_url(url)
    assert SECRET not in masked and "pa/ss" not in masked and "pa?ss" not in masked and "ss@" not in masked
    assert kept in masked


def test_a_url_without_secrets_is_shown_as_given():
    for url in ("redis://127.0.0.1:6379/0", "rediss://db.example:6380/1?ssl_ca_certs=/ca.pem", "redis://u@h/0"):
        assert mask_url(url) == url


def test_query_passwords_never_appear_in_any_console_or_error(broker_url, cli, consumer, conn, env):
    conn.config_set("requirepass", SECRET)
    try:
        url = f"{broker_url}?password={SECRET}"
        process = consumer("--workers", "1", "--queue", "queue_one", REDIS_URL=url)
        wait_for(lambda: conn.scard("rq:workers") >= 1, "a worker registered")
        results = [
            cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--wait", REDIS_URL=url),
            cli("producer_main.py", "--batches", REDIS_URL=url),
            cli("kill_thread/list_workers.py", REDIS_URL=url),
            cli("producer_main.py", "--task", "sleep", REDIS_URL=url.replace(SECRET, "wrong-pw")),
            cli("producer_main.py", "--task", "sleep", "--redis-url", url.replace("/0?", "/zero?")),
            cli("kill_thread/kill_workers.py", "--all", REDIS_URL=url),
        ]
        assert [r.returncode for r in results] == [0, 0, 0, 1, 2, 0], [r.stderr for r in results]
        assert "?password=****" in results[3].stderr and "refused the credentials" in results[3].stderr
        assert "?password=****" in results[4].stderr
        dashboard = subprocess.Popen(
            [sys.executable, "dashboard_main.py", "--port", str(free_port())],
            cwd=ROOT,
            env={**env, "REDIS_URL": url},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            started = ""
            while "Dashboard at" not in started:
                line = dashboard.stderr.readline()
                assert line, "the dashboard ended before its start-up line"
                started += line
        finally:
            dashboard.terminate()
            dashboard.wait(10)
        process.send_signal(2)
        output = process.communicate(timeout=30)[0]
        printed = output + started + "".join(r.stdout + r.stderr for r in results)
        assert SECRET not in printed and "wrong-pw" not in printed
        assert "?password=****" in started
    finally:
        conn.execute_command("AUTH", SECRET)
        conn.config_set("requirepass", "")
