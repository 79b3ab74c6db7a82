"""A job record can only make a worker do what the catalog allows, at a bounded cost (issue 12, classes 5 and 6).

Records are forged as an attacker with broker access writes them: stock RQ's enqueue with
fields the workbench never writes (webhooks, rate limits), and raw HSET/XADD. A real consumer
runs them; a loopback HTTP server counts every request anything sends it.
"""

from __future__ import annotations

import json
import threading
import zlib
from base64 import b64encode
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.webhook import Webhook

from workbench import defaults
from workbench.jobs import fetch_job

from .support import job_records, wait_for

QUEUE = "queue_one"


class _Listener(BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.calls.append((self.command, self.path, self.headers.get("X-Forged")))
        self.send_response(204)
        self.end_headers()

    do_GET = do_POST = _record  # noqa: N815 - the names http.server calls

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    server.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _hooks(server, tag: str) -> list[Webhook]:
    base = f"http://127.0.0.1:{server.server_address[1]}/{tag}"
    return [
        Webhook(base + "/finished", "finished", headers={"X-Forged": "yes"}),
        Webhook(base + "/failed", "failed", method="POST", headers={"X-Forged": "yes"}),
    ]


def _ended(conn, job_id: str) -> str:
    def status():
        value = conn.hget(f"rq:job:{job_id}", "status")
        return value.decode() if value in (b"finished", b"failed") else None

    return wait_for(status, f"job {job_id} to end", timeout=30)


def test_webhooks_in_a_job_record_make_no_worker_send_anything(conn, consumer, listener):
    consumer("--workers", "1", "--queue", QUEUE, wait_workers=1)
    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    ran = queue.enqueue("task_def.primes.count_primes", limit=100, webhooks=_hooks(listener, "ran"))
    refused = queue.enqueue("os.getcwd", webhooks=_hooks(listener, "refused"))
    # A queued catalog job rewritten with raw HSET: webhooks, and RQ's rate-limit fields.
    rewritten = queue.enqueue("task_def.primes.count_primes", limit=50)
    hooks = json.dumps([hook.to_dict() for hook in _hooks(listener, "rewritten")])
    conn.hset(rewritten.key, mapping={"webhooks": hooks, "rate_limit_key": "x", "rate_limit_concurrency": "1"})
    last = queue.enqueue("task_def.primes.count_primes", limit=10)  # one worker: it ends after the others
    assert [_ended(conn, job.id) for job in (ran, refused, rewritten, last)] == [
        "finished", "failed", "finished", "finished"
    ]  # fmt: skip
    assert fetch_job(ran.id, conn).return_value() == {"start": 0, "limit": 100, "count": 25}
    assert listener.calls == []

    # Control: stock RQ's worker on the same records sends them, so the listener would have heard.
    control = Queue("control", connection=conn, serializer=JSONSerializer)
    control.enqueue("task_def.primes.count_primes", limit=100, webhooks=_hooks(listener, "control"))
    SimpleWorker([control], connection=conn, serializer=JSONSerializer).work(burst=True)
    assert ("GET", "/control/finished", "yes") in listener.calls


def _bomb(size: int) -> bytes:
    """A small zlib blob that inflates to `size` bytes."""
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1024 * 1024)
    return b"".join([*(compressor.compress(chunk) for _ in range(size // len(chunk))), compressor.flush()])


BOMB = _bomb(4 * defaults.MAX_INFLATED_BYTES)


def test_a_job_whose_data_inflates_past_the_cap_is_quarantined_and_the_worker_carries_on(conn, consumer):
    consumer("--workers", "1", "--queue", QUEUE, wait_workers=1)
    queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
    queue.enqueue("task_def.primes.count_primes", limit=10)  # the worker is up and taking jobs
    bomb = queue.enqueue("task_def.primes.count_primes", limit=100)
    assert len(BOMB) < 200 * 1024
    conn.hset(bomb.key, "data", BOMB)
    after = queue.enqueue("task_def.primes.count_primes", limit=100)
    assert _ended(conn, after.id) == "finished"
    assert _ended(conn, bomb.id) == "failed"
    reason = conn.hget("workbench:quarantine", bomb.id).decode()
    assert "RecordTooLarge" in reason and "inflate past 16 MiB" in reason, reason


def test_the_producer_shows_an_error_text_past_the_cap_as_too_large(cli, conn):
    queued = cli("producer_main.py", "--task", "sleep", "--param", "seconds=0", "--queue", "nobody", "--json")
    assert queued.returncode == 0, queued.stderr
    [record] = job_records(queued.stdout)
    batch = json.loads(queued.stdout.splitlines()[0])["batch"]
    key = f"rq:job:{record['id']}"
    conn.hset(key, "status", "failed")  # its failure, written as RQ writes results, with a bomb for a traceback
    conn.xadd(f"rq:results:{record['id']}", {"type": 2, "exc_string": b64encode(BOMB), "worker_name": "w"})
    shown = cli("producer_main.py", "--batch", batch, "--json")
    [job] = job_records(shown.stdout)
    assert job["status"] == "failed"
    assert job["error"].startswith("its error text is too large to show"), job
