"""The dashboard in a real browser (Debian's chromium driven by Playwright), as a person uses it.

Skipped, with the reason shown by `pytest -ra`, where chromium or playwright is missing:
`make test` runs .ci/ensure-chromium to install it where it can.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from workbench.jobs import make_queue

from .dashboard_support import SLEEP, XSS_QUEUE, XSS_URL, dashboard_server, enqueue_hostile_job, make_failed

pytestmark = pytest.mark.browser

#: Without these, chromium's background connections hang on this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Records every CSP violation the page reports; installed before any page script runs.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
    window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def browser():
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (run .ci/ensure-chromium as root on Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (pip install -r requirements-test.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.add_init_script(CSP_PROBE)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def csp_violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_queues_jobs_and_a_hostile_job_render_as_inert_text(page, env, conn):
    from playwright.sync_api import expect

    hostile = enqueue_hostile_job(conn)
    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    make_queue(XSS_QUEUE, conn).enqueue(SLEEP, seconds=0)
    failed = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    make_failed(conn, failed, f"ValueError: {XSS_URL}")

    with dashboard_server(env) as base:
        page.goto(base + "/")
        row = page.locator("tr[data-role=queue][data-queue=queue_one]")
        expect(row.locator("td.queue-name")).to_have_text("queue_one")
        expect(row.locator("[data-role=queued-count]")).to_have_text("2")
        expect(page.locator("td.queue-name", has_text=XSS_QUEUE)).to_have_count(1)  # the name, as text

        assert csp_violations(page) == []

        row.locator("[data-role=queued-count]").click()
        job_row = page.locator(f"tr[data-job-id='{hostile.id}']")
        expect(job_row.locator("span.description")).to_have_text(f"scrape(url={XSS_URL!r})")

        assert csp_violations(page) == []

        job_row.locator(".job_id a").click()
        expect(page.locator("[data-field=description]")).to_have_text(f"scrape(url={XSS_URL!r})")
        expect(page.locator("[data-field=metadata]")).to_contain_text("onerror=alert(1)")
        expect(page.locator("[data-field=status]")).to_have_text("queued")
        assert csp_violations(page) == []

        page.goto(f"{base}/0/view/jobs/queue_one/failed/8/asc/1")
        expect(page.locator(f"tr[data-job-id='{failed.id}'] pre.exc_info")).to_have_text(f"ValueError: {XSS_URL}")
        assert csp_violations(page) == []

        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
        assert page.dialogs == []
        assert csp_violations(page) == []


def test_workers_show_progress_and_job_actions_work_under_the_csp(page, env, conn, consumer):
    from playwright.sync_api import expect

    consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
    running = make_queue("queue_one", conn).enqueue(SLEEP, seconds=3)
    failed = make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    make_failed(conn, failed, "RuntimeError: boom")
    with dashboard_server(env) as base:
        page.goto(base + "/0/view/workers")
        row = page.locator("tr[data-role=worker]", has_text=running.id)
        expect(row.locator(".worker-state")).to_have_text("busy")
        expect(row.locator(".worker-progress")).to_have_text(re.compile(r"^[1-9]\d*%$"))
        assert csp_violations(page) == []

        page.goto(f"{base}/0/view/job/{failed.id}")
        expect(page.locator("[data-field=status]")).to_have_text("failed")
        page.locator("#requeue-job-btn").click()
        # Requeued, the live worker runs it once the 3 s job is done.
        expect(page.locator("[data-field=status]")).to_have_text("finished", timeout=20_000)
        page.locator("#delete-job-btn").click()
        page.locator("#confirmation-modal-yes").click()
        page.wait_for_url(f"{base}/")  # rq-dashboard sends /0/view/queues on to /
        assert not conn.exists(failed.key)
        assert csp_violations(page) == []
