"""A real worker scraping hostile pages keeps a bounded footprint (issue 12, class 6).

Each page is just under the 5 MiB cap and built to make a tree-building parser swell: links,
tags nested five million deep, tiny elements, one start tag that never ends, a title that never
closes. The worker is a real consumer's process; its peak resident memory (VmHWM, read from
/proc while it is still alive) must stay under 200 MiB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import Worker

from workbench.catalog_load import load_catalog
from workbench.jobs import SERIALIZER, fetch_job
from workbench.producer import enqueue, make_batch

from .scrape_pages import HOSTILE, HOSTILE_BYTES, serve_pages
from .support import wait_for

PEAK_LIMIT_MIB = 200


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)")
def test_a_worker_scraping_hostile_pages_stays_under_200_mib(consumer, conn):
    with serve_pages() as pages:
        consumer("--workers", "1", "--queue", "scrape-mem", wait_workers=1, SCRAPE_ALLOWED_HOSTS=pages.host)
        (worker,) = Worker.all(connection=conn, serializer=SERIALIZER)
        before = peak_rss_mib(worker.pid)
        scrape = load_catalog()["scrape"]
        jobs = {
            kind: enqueue(conn, make_batch(scrape, {"url": f"{pages.base}/hostile/{kind}"}, queue="scrape-mem"))[0]
            for kind in HOSTILE
        }

        def all_ended():
            return all(fetch_job(job.id, conn).get_status() in ("finished", "failed") for job in jobs.values())

        wait_for(all_ended, "the hostile pages to be scraped", timeout=150, interval=0.5)
        peak = peak_rss_mib(worker.pid)  # the same process ran every job: one worker, still alive

    results = {kind: fetch_job(job.id, conn).latest_result() for kind, job in jobs.items()}
    failed = {kind: result.exc_string for kind, result in results.items() if result.type != result.Type.SUCCESSFUL}
    assert failed == {}
    print(f"worker peak {peak:.0f} MiB, {before:.0f} MiB before the scrapes")
    assert peak < PEAK_LIMIT_MIB, f"worker peaked at {peak:.0f} MiB (it started at {before:.0f} MiB)"
    summary = {kind: result.return_value for kind, result in results.items()}
    assert all(page["bytes"] == HOSTILE_BYTES for page in summary.values())
    assert summary["links"]["links"] == HOSTILE_BYTES // len(HOSTILE["links"][1]) - 1  # the last one is cut short
    assert summary["nested"]["words"] <= 1 and summary["tiny"]["links"] == 0  # at most the cut-off last tag
    assert summary["open-title"]["title"].startswith("<i>x</i><i>x</i>")
