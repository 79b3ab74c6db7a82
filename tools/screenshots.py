"""`make screenshots`: the README's dashboard pictures, from a real run.

Starts a private broker (on a free port, data in a temporary folder), a consumer with 4 workers,
and the dashboard, enqueues real batches through `producer_main.py` for a few minutes (sleeps,
a split count_primes, a scrape the address guard refuses, so one job fails), then photographs
the Queues, Jobs (failed, with its traceback open), Workers (while busy), a batch and the Trends
pages in headless Chromium into docs/screenshots/. Everything it started, it stops by pid.

    python -m tools.screenshots [--minutes 3] [--out docs/screenshots]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.support import CHROMIUM_ARGS, free_port
from tools.common import ROOT, answers, private_broker
from workbench import batches
from workbench.text import as_text

QUEUE = "queue_one"


def log(message: str) -> None:
    print(f"[screenshots] {message}", file=sys.stderr, flush=True)


class Run:
    """The processes of one run, stopped in reverse order by pid (process group)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def produce(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "producer_main.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT if "consumer_main.py" in process.args[1] else signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def workload(run: Run, conn: redis.Redis, minutes: float) -> str:
    """Enqueue a steady mix for `minutes`; return the id of the split batch."""
    end = time.monotonic() + minutes * 60
    split_batch = ""
    round_number = 0
    while time.monotonic() < end:
        round_number += 1
        run.produce("--task", "sleep", "--param", "seconds=1.5", "--count", "30", "--queue", QUEUE)
        run.produce("--task", "fibonacci", "--param", "n=200000", "--count", "3", "--queue", QUEUE)
        if round_number % 2 == 1:
            run.produce("--task", "count_primes", "--param", "limit=60000000", "--split", "4", "--queue", QUEUE)
            split_batch = batches.recent(conn, 1)[0].id
        if round_number % 3 == 1:
            # A private address the scrape guard refuses: this job fails, with its reason.
            run.produce("--task", "scrape", "--param", "url=http://10.0.0.1/admin", "--queue", QUEUE)
        time.sleep(20)
    wait_until(lambda: conn.llen(f"rq:queue:{QUEUE}") == 0, "the queue to drain", 120)
    wait_until(lambda: conn.zcard(f"rq:wip:{QUEUE}") == 0, "the running jobs to end", 120)
    return split_batch


def shoot(base: str, out: Path, split_batch: str, run: Run, conn: redis.Redis, extra: bool = False) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})

        page.goto(f"{base}/0/view/queues")
        expect(page.locator("tr[data-role=queue]").first).to_be_visible()
        page.screenshot(path=str(out / "queues.png"), full_page=True)

        page.goto(f"{base}/0/view/jobs/{QUEUE}/failed/8/dsc/1")
        row = page.locator("tr[data-role=job]").first
        expect(row).to_be_visible()
        row.locator("a.error-line").click()
        page.screenshot(path=str(out / "jobs-failed.png"), full_page=True)

        page.goto(f"{base}/0/view/batch/{split_batch}")
        expect(page.locator("[data-field=speedup]")).not_to_have_text("-", timeout=30_000)
        page.screenshot(path=str(out / "batch.png"), full_page=True)

        page.goto(f"{base}/0/view/trends")
        expect(page.locator("svg.chart-bars rect.bar").first).to_be_visible()
        page.screenshot(path=str(out / "trends.png"), full_page=True)

        if extra:
            failed_id = as_text(conn.zrange(f"rq:failed:{QUEUE}", 0, 0)[0])
            for name, path in [
                ("failed-all", "/0/view/failed"),
                ("search", "/0/view/search?q=fibonacci"),
                ("batches", "/0/view/batches"),
                ("job", f"/0/view/job/{failed_id}"),
            ]:
                page.goto(base + path)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)

        # For the Workers page: two sleeping jobs and two that keep a core busy.
        run.produce("--task", "sleep", "--param", "seconds=25", "--count", "2", "--queue", QUEUE)
        run.produce("--task", "sha256_chain", "--param", "rounds=40000000", "--count", "2", "--queue", QUEUE)
        page.goto(f"{base}/0/view/workers")
        expect(page.locator("td.worker-state", has_text="busy")).to_have_count(4, timeout=20_000)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and max(_percents(page), default=0) < 50:
            page.wait_for_timeout(500)  # until a beat shows the hashing workers at work
        page.screenshot(path=str(out / "workers.png"), full_page=True)
        browser.close()


def _percents(page: Page) -> list[float]:
    texts = page.locator("td.worker-cpu").all_inner_texts()
    return [float(text.rstrip("%")) for text in texts if text.endswith("%")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the workload runs (default 3)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--extra", action="store_true", help="also the failed, search, batches and job pages")
    args = parser.parse_args()
    with private_broker("workbench-screenshots-") as broker:
        photograph(broker.url, broker.env, args)
    return 0


def photograph(url: str, env: dict[str, str], args: argparse.Namespace) -> None:
    dash_port = free_port()
    run = Run(env)
    try:
        conn = redis.Redis.from_url(url)
        run.start("consumer_main.py", "--workers", "4", "--queue", QUEUE)
        run.start("dashboard_main.py", "--port", str(dash_port))
        base = f"http://127.0.0.1:{dash_port}"
        wait_until(lambda: conn.scard("rq:workers") >= 4, "4 workers")
        wait_until(lambda: answers(base), "the dashboard")
        log(f"broker {url}, dashboard {base}; running the workload for {args.minutes:g} min")
        split_batch = workload(run, conn, args.minutes)
        log("photographing")
        shoot(base, Path(args.out), split_batch, run, conn, args.extra)
        log(f"saved in {args.out}")
    finally:
        run.stop()


if __name__ == "__main__":
    raise SystemExit(main())
