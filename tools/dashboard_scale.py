"""`make dashboard-scale`: every dashboard page and JSON view timed against a big broker.

Seeds a private broker with 100,000 finished and 10,000 failed jobs in one queue (job records
as RQ writes them, through RQ's own serialisation, written in pipelined chunks), a batch of
10,000 of them, an hour of statistics, and 4 real workers; starts `dashboard_main.py`; then
GETs every page and JSON view over HTTP several times and prints the median and the slowest
answer of each. It also checks no GET changed the broker (no registry cleanup on a read).

Timings are printed, never asserted (the machine is shared); `tests/test_dashboard_scale.py`
runs this as a slow test. `python -m tools.dashboard_scale [--finished N] [--failed N] [--rounds N]`
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
import requests
from redis.typing import EncodableT, FieldT
from rq.results import Result
from rq.utils import utcformat

from tests.support import free_port
from tools.common import ROOT, answers, private_broker
from workbench import batches, stats
from workbench.jobs import make_queue

QUEUE = "big"
TARGET_MS = 300
CHUNK = 5000
TRACEBACK_HEAD = 'Traceback (most recent call last):\n  File "task_def/sleep.py", line 9, in sleep\n'


@dataclass
class Timing:
    path: str
    status: int
    median_ms: float
    max_ms: float
    note: str = ""


def seed(conn: redis.Redis, finished: int, failed: int) -> tuple[list[str], list[str]]:
    """Write `finished` + `failed` ended jobs into QUEUE's registries; return their ids."""
    queue = make_queue(QUEUE, conn)
    template = queue.create_job("task_def.sleep.sleep", kwargs={"seconds": 0.5}, description="sleep(seconds=0.5)")
    base = template.to_dict()
    now = datetime.now(UTC)
    finished_ids: list[str] = []
    failed_ids: list[str] = []
    for kind, count, target in (("finished", finished, finished_ids), ("failed", failed, failed_ids)):
        registry = queue.finished_job_registry if kind == "finished" else queue.failed_job_registry
        for start in range(0, count, CHUNK):
            with conn.pipeline(transaction=False) as pipe:
                scores = {}
                for index in range(start, min(count, start + CHUNK)):
                    job_id = f"{kind[:3]}{index:08d}-0000-4000-8000-000000000000"
                    ended = now - timedelta(seconds=(count - index) * 0.03)
                    record = {
                        **base,
                        "status": kind,
                        "origin": QUEUE,
                        "description": f"sleep(seconds=0.5) #{index}",
                        "enqueued_at": utcformat(ended - timedelta(seconds=2)),
                        "started_at": utcformat(ended - timedelta(seconds=0.5)),
                        "ended_at": utcformat(ended),
                        "worker_name": "seed.w1",
                    }
                    pipe.hset(f"rq:job:{job_id}", mapping=record)
                    if kind == "failed":
                        error = f"{TRACEBACK_HEAD}RuntimeError: seeded {index}"
                        result = Result(job_id, Result.Type.FAILED, conn, exc_string=error)  # as RQ serialises it
                        fields: dict[FieldT, EncodableT] = {key: value for key, value in result.serialize().items()}
                        pipe.xadd(Result.get_key(job_id), fields)
                        pipe.set(stats.ERROR_PREFIX + job_id, error, ex=86_400)  # as the failing worker writes it
                    scores[job_id] = ended.timestamp() + 86_400
                    target.append(job_id)
                pipe.zadd(registry.key, scores)
                pipe.execute()
    conn.sadd("rq:queues", queue.key)
    return finished_ids, failed_ids


def seed_batch_and_stats(conn: redis.Redis, job_ids: list[str]) -> str:
    batch_id = batches.new_id()
    with conn.pipeline() as pipe:
        batches.write(pipe, batch_id, task="sleep", queue=QUEUE, params={"seconds": 0.5}, job_ids=job_ids)
        pipe.execute()
    moment = time.time()
    with conn.pipeline(transaction=False) as pipe:
        for index in range(20_000):
            at = moment - (index % 3600)
            outcome = stats.FAILED if index % 10 == 0 else stats.FINISHED
            stats.record_end(pipe, QUEUE, "sleep", outcome, 0.4 + (index % 7) / 10, now=at)
            if index % 2000 == 1999:
                pipe.execute()
        pipe.execute()
    return batch_id


def paths(finished_ids: list[str], failed_ids: list[str], batch_id: str) -> list[str]:
    last_finished = -(-len(finished_ids) // 100)
    lists = [
        f"/0/data/jobs/{QUEUE}/{name}/{size}/{order}/{page}.json"
        for name in ("finished", "failed", "queued", "started")
        for size, order, page in ((8, "asc", 1), (100, "dsc", 1), (500, "asc", 1))
    ]
    return [
        "/",
        "/0/view/jobs",
        f"/0/view/jobs/{QUEUE}/finished/100/dsc/1",
        "/0/view/workers",
        "/0/view/failed",
        "/0/view/batches",
        f"/0/view/batch/{batch_id}",
        "/0/view/trends",
        f"/0/view/job/{failed_ids[-1]}",
        f"/0/view/search?q={failed_ids[0][:8]}",
        "/0/data/queues.json",
        "/0/data/workers.json",
        *lists,
        f"/0/data/jobs/{QUEUE}/finished/100/asc/{last_finished}.json",
        f"/0/data/jobs/{QUEUE}/finished/100/asc/{last_finished // 2}.json",
        f"/0/data/job/{finished_ids[len(finished_ids) // 2]}.json",
        f"/0/data/job/{failed_ids[-1]}.json",
        "/0/data/failed.json",
        "/0/data/failed.json?page=100",
        f"/0/data/failed.json?queue={QUEUE}&task=sleep",
        "/0/data/failed.json?task=fibonacci",
        f"/0/data/search.json?q={failed_ids[len(failed_ids) // 2][:12]}",
        f"/0/data/search.json?q={finished_ids[-1]}",
        f"/0/data/search.json?q=seeded {len(failed_ids) - 1}",
        "/0/data/search.json?q=no-such-text-anywhere",
        "/0/data/batches.json",
        f"/0/data/batch/{batch_id}.json",
        "/0/data/trends.json",
        "/metrics",
    ]


def measure(base: str, targets: list[str], rounds: int) -> list[Timing]:
    session = requests.Session()
    timings = []
    for path in targets:
        session.get(base + path, timeout=60)  # warm: the first answer may import or compile
        spent, status = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            response = session.get(base + path, timeout=60)
            spent.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        note = ""
        if "/data/search.json" in path:
            note = _search_note(session, base + path)
        timings.append(Timing(path, status, statistics.median(spent), max(spent), note))
    return timings


def _search_note(session: requests.Session, url: str) -> str:
    """How the page completes a search: each request searches for a moment and says where to go on."""
    found = session.get(url, timeout=60).json()
    if found["complete"] and found["scanned"] == 0 and found["jobs"]:
        return "found by its whole id, without searching"
    first = f"{len(found['jobs'])} found; the first request searched {found['scanned']:,} of {found['total']:,} jobs"
    requests_made, slowest, hits = 1, 0.0, len(found["jobs"])
    while found.get("next"):
        started = time.perf_counter()
        found = session.get(url, params={"from": found["next"]}, timeout=60).json()
        slowest = max(slowest, (time.perf_counter() - started) * 1000)
        requests_made += 1
        hits += len(found["jobs"])
    if requests_made == 1:
        return first
    return f"{first}; all of them in {requests_made} requests, the slowest {slowest:.0f} ms, {hits} found"


def fingerprint(conn: redis.Redis) -> tuple:
    """What a registry cleanup by a GET would change (queue length, registry sizes, job statuses)."""
    keys = [f"rq:{kind}:{QUEUE}" for kind in ("finished", "failed", "wip", "canceled", "deferred", "scheduled")]
    statuses = conn.sort(f"rq:failed:{QUEUE}", by="nosort", get=["rq:job:*->status"])
    assert isinstance(statuses, list)  # SORT without STORE answers with the values
    return (conn.llen(f"rq:queue:{QUEUE}"), *(conn.zcard(key) for key in keys), tuple(statuses))


def report(timings: list[Timing], seeded: str, load: tuple[float, float, float]) -> str:
    width = max(len(t.path) for t in timings)
    lines = [
        f"Dashboard at scale: {seeded}; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.",
        f"{'path'.ljust(width)}  status  median ms  max ms  under {TARGET_MS} ms",
    ]
    for t in timings:
        ok = "yes" if t.max_ms < TARGET_MS else ("median" if t.median_ms < TARGET_MS else "NO")
        note = f"  ({t.note})" if t.note else ""
        lines.append(f"{t.path.ljust(width)}  {t.status:>6}  {t.median_ms:>9.1f}  {t.max_ms:>6.1f}  {ok}{note}")
    slowest = max(timings, key=lambda t: t.median_ms)
    lines.append(f"slowest median: {slowest.median_ms:.1f} ms ({slowest.path})")
    return "\n".join(lines)


def run(finished: int, failed: int, rounds: int) -> tuple[list[Timing], str, bool]:
    with private_broker("workbench-scale-") as broker:
        return _run(broker.url, broker.env, finished, failed, rounds)


def _run(url: str, env: dict[str, str], finished: int, failed: int, rounds: int) -> tuple[list[Timing], str, bool]:
    dash_port = free_port()
    processes: list[subprocess.Popen] = []
    try:
        conn = redis.Redis.from_url(url)
        started = time.monotonic()
        finished_ids, failed_ids = seed(conn, finished, failed)
        batch_id = seed_batch_and_stats(conn, finished_ids[-10_000:])
        took = time.monotonic() - started
        seeded = f"{finished:,} finished and {failed:,} failed jobs in one queue (seeded in {took:.0f} s)"
        for args in (
            ["consumer_main.py", "--workers", "4", "--queue", "elsewhere"],
            ["dashboard_main.py", "--port", str(dash_port)],
        ):
            processes.append(
                subprocess.Popen(
                    [sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            )  # fmt: skip
        base = f"http://127.0.0.1:{dash_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (conn.scard("rq:workers") >= 4 and answers(base)):
            time.sleep(0.2)
        before = fingerprint(conn)
        timings = measure(base, paths(finished_ids, failed_ids, batch_id), rounds)
        unchanged = fingerprint(conn) == before
        return timings, report(timings, seeded, os.getloadavg()), unchanged
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--failed", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timings, text, unchanged = run(args.finished, args.failed, args.rounds)
    print(text)
    print("no GET changed the broker" if unchanged else "a GET CHANGED the broker")
    return 0 if unchanged and all(t.status == 200 for t in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
