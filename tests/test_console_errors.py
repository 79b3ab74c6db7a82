"""The last resort of every entry point (`workbench.console.common.run`): an error no layer turned into
words is still one sentence and exit 1, never a traceback; Ctrl-C stays 130 and SystemExit passes."""

from __future__ import annotations

import pytest
import redis

from workbench.console import common


def _raising(exc: BaseException):
    def main(argv: list[str]) -> int:
        raise exc

    return main


def test_an_unexpected_error_is_one_sentence_and_exit_1(capsys):
    secret = ValueError("cannot use redis://alice:hunter2@db.example:6379/0\nsecond line")
    assert common.run(_raising(secret), []) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: the command stopped on an unexpected ValueError: cannot use redis://alice:****@db.example:6379/0 "
        "second line.\n"
    )


def test_ctrl_c_is_130_and_system_exit_passes_through(capsys):
    assert common.run(_raising(KeyboardInterrupt()), []) == 130
    with pytest.raises(SystemExit) as leaving:
        common.run(_raising(SystemExit(3)), [])
    assert leaving.value.code == 3


def test_a_broker_error_names_the_broker_problem(cli, conn):
    """A broker user without the commands list_workers needs: denied by the broker, said in one sentence."""
    conn.acl_setuser(
        "probe-no-read", enabled=True, passwords=["+pw"], commands=["+ping", "+info", "+hello"], keys=["*"]
    )
    try:
        port = conn.connection_pool.connection_kwargs["port"]
        denied = cli("kill_thread/list_workers.py", "--redis-url", f"redis://probe-no-read:pw@127.0.0.1:{port}/0")
    finally:
        conn.acl_deluser("probe-no-read")
    assert denied.returncode == 1
    assert denied.stderr == (
        "error: the broker denied a command (User probe-no-read has no permissions to run the 'smembers' command); "
        "grant the broker user that command, or use another user.\n"
    )
    assert "Traceback" not in denied.stderr and denied.stdout == ""
    closed = common.broker_problem(redis.ConnectionError("Connection closed by server."))
    assert closed == (
        "lost the connection to the broker (Connection closed by server); check that it runs and is reachable, "
        "then retry."
    )
