"""Text from outside never reaches a terminal as control sequences or markup (issue 12, class 1).

Forged broker records (written with raw redis commands) and a hostile web page carry escape
sequences (clear screen, an OSC 8 hyperlink, a C1 CSI), a bidi override and rich markup. Every
console shows them inertly: no ESC, C1 or bidi character reaches stdout or stderr, and `[blink]`
is shown as the text it is. `--json` stays exact JSON: the forged strings come back unaltered.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from task_def.sleep import sleep
from workbench.jobs import make_queue

from .supervision_support import FAST, Output, stop_cold
from .support import batch_record, job_records, wait_for

#: Clear screen, a hyperlink to elsewhere, a C1 CSI, a right-to-left override, and rich markup.
EVIL = "\x1b[2J\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\x9b31m\u202eEVIL[blink]B[/blink]"
#: Nothing of this may reach a terminal: ESC, C1 controls, BEL, bidi overrides and isolates.
RAW = re.compile("[\x1b\x07\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_inert(*outputs: str) -> None:
    for text in outputs:
        assert not RAW.search(text), repr(RAW.search(text))


def forge_worker(conn, name: str, hostname: str, queues: str) -> None:
    """A worker record as an attacker with broker access would write it: raw HSET and SADD."""
    key = f"rq:worker:{name}"
    conn.hset(key, mapping={"birth": "2026-01-01T00:00:00.000000Z", "last_heartbeat": "2026-12-01T00:00:00.000000Z",
                            "hostname": hostname, "queues": queues, "state": "idle", "pid": "42"})  # fmt: skip
    conn.sadd("rq:workers", key)


def test_forged_worker_records_are_listed_inertly_and_exactly_in_json(cli, conn):
    forge_worker(conn, "w[blink]1[/blink]\x1b[31m", EVIL, "q1,[blink]q2\u202e")
    table = cli("kill_thread/list_workers.py")
    assert table.returncode == 0, table.stderr
    assert_inert(table.stdout, table.stderr)
    assert "w[blink]1[/blink]\\x1b[31m" in table.stdout  # markup shown as written, ESC made visible
    assert "[blink]q2\\u202e" in table.stdout
    listed = cli("kill_thread/list_workers.py", "--json")
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (record["name"], record["hostname"]) == ("w[blink]1[/blink]\x1b[31m", EVIL)
    assert record["queues"] == ["q1", "[blink]q2\u202e"]


def test_the_consumer_log_shows_forged_names_and_job_descriptions_inertly(conn, consumer):
    process = consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, **FAST)
    output = Output(process)
    conn.sadd("workbench:workers", "ghost[blink]\x1b]8;;http://evil.example/\x07")  # the janitor reports it dead
    job = make_queue("queue_one", conn).enqueue(sleep, seconds=0, description=EVIL)  # RQ logs the description
    wait_for(lambda: job.get_status(refresh=True) == "finished", "the job with a hostile description")
    output.wait_for("was dead")
    stop_cold(process)
    text = output.finish()
    assert_inert(text)
    assert "ghost[blink]\\x1b]8;;http://evil.example/\\x07 was dead" in text
    assert "EVIL[blink]B[/blink]" in text


def test_forged_job_errors_and_task_names_reach_the_producer_inertly(cli, conn):
    queued = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--count", "2", "--queue", "nobody",
                 "--json")  # fmt: skip
    batch, jobs = batch_record(queued.stdout), job_records(queued.stdout)
    from rq.results import Result

    from workbench.jobs import fetch_job

    for record in jobs:  # rewrite both jobs as failed, with a hostile error and task name
        job = fetch_job(record["id"], conn)
        conn.hset(job.key, mapping={"status": "failed", "meta": json.dumps({"task": EVIL, "batch": batch["batch"]})})
        Result.create_failure(job, 600, exc_string=f"Traceback (most recent call last):\nValueError: {EVIL}\n")
    shown = cli("producer_main.py", "--batch", batch["batch"])
    assert shown.returncode == 0, shown.stderr
    assert_inert(shown.stdout, shown.stderr)
    assert "EVIL[blink]B[/blink]" in shown.stdout
    assert "raised an unexpected error" in shown.stdout  # a ValueError is not a workbench refusal
    as_json = cli("producer_main.py", "--batch", batch["batch"], "--json")
    errors = [record["error"] for record in job_records(as_json.stdout)]
    assert errors == [f"ValueError: {EVIL}"] * 2  # exact in JSON
    listed = cli("producer_main.py", "--batches")
    assert_inert(listed.stdout, listed.stderr)


class Hostile(BaseHTTPRequestHandler):
    """A page whose title, and a redirect whose target, carry escape sequences and markup."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path == "/page":
            body = (
                b"<html><head><title>&#27;[2J&#27;]8;;http://evil.example/&#7;x [blink]Fish &lt;&amp;&gt; Chips"
                b"&#8238;</title></head><body><h1>\x1b[31mred</h1><p>one two</p></body></html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(302)
            target = "http://10.0.0.1/\x1b]8;;http://evil.example/\x07[blink]x\u202e"  # sent as UTF-8 bytes
            self.send_header("Location", target.encode().decode("latin-1"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_hostile_page_title_and_redirect_reach_the_producer_inertly(cli, consumer, hostile_site):
    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1, SCRAPE_ALLOWED_HOSTS=hostile_site)
    page = cli("producer_main.py", "--task", "scrape", "--param", f"url=http://{hostile_site}/page", "--wait")
    assert page.returncode == 0, page.stderr
    assert_inert(page.stdout, page.stderr)
    assert "[blink]Fish <&> Chips" in page.stdout  # markup literal; the entities decoded once, as the page says
    moved = cli("producer_main.py", "--task", "scrape", "--param", f"url=http://{hostile_site}/go", "--wait")
    assert moved.returncode == 1  # the redirect goes to a private address: refused
    assert_inert(moved.stdout, moved.stderr)
    assert "refused the redirect" in moved.stdout and "[blink]" in moved.stdout


def test_error_sentences_show_outside_text_inertly(cli):
    unreachable = "redis://nothing.invalid:6379/0?client_name=[blink]x"
    result = cli("producer_main.py", "--task", "sleep", REDIS_URL=unreachable)
    assert result.returncode == 1, result.stderr
    assert "cannot reach the broker at redis://nothing.invalid:6379/0?client_name=[blink]x" in result.stderr
    for malformed in ("redis://\x1b[2Jhost[blink]:6379/0", "redis://evil\x1bc\x9b2J\u202ehost:6379/0"):
        refused = cli("producer_main.py", "--task", "sleep", REDIS_URL=malformed)
        assert refused.returncode == 2, refused.stderr
        assert_inert(refused.stdout, refused.stderr)
        assert "the broker URL redis://" in refused.stderr and "Traceback" not in refused.stderr
