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
from .support import CHROMIUM_ARGS, wait_for

pytestmark = pytest.mark.browser

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


# -- the operator's console (issue 15) --------------------------------------------------------------


def test_stop_from_the_started_list_and_from_a_jobs_page(page, env, conn, consumer):
    from playwright.sync_api import expect

    from .supervision_support import FAST, enqueue_sleep, status, wait_started

    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    first, second = enqueue_sleep(conn, 60).id, enqueue_sleep(conn, 60).id
    wait_started(conn, first)
    wait_started(conn, second)
    with dashboard_server(env) as base:
        page.goto(f"{base}/0/view/jobs/queue_one/started/8/asc/1")
        row = page.locator(f"tr[data-job-id='{first}']")
        row.locator("button.stop-btn").click()
        page.locator("#confirmation-modal-yes").click()
        expect(page.locator("#notice")).to_have_text("stop job " + first + ": done.", timeout=20_000)
        expect(row).to_have_count(0)  # it left the started list
        assert status(conn, first) == "stopped"

        page.goto(f"{base}/0/view/job/{second}")
        expect(page.locator("[data-field=status]")).to_have_text("started")
        page.locator("#stop-job-btn").click()
        page.locator("#confirmation-modal-yes").click()
        expect(page.locator("[data-field=status]")).to_have_text("stopped", timeout=20_000)
        expect(page.locator("#stop-job-btn")).to_be_hidden()
        expect(page.locator("#requeue-job-btn")).to_be_visible()
        assert csp_violations(page) == []


def test_bulk_requeue_of_selected_failed_jobs(page, env, conn, consumer):
    from playwright.sync_api import expect

    failed = [make_queue("queue_one", conn).enqueue(SLEEP, seconds=0) for _ in range(3)]
    for job in failed:
        make_failed(conn, job, "RuntimeError: flaky")
    with dashboard_server(env) as base:
        page.goto(f"{base}/0/view/failed")
        rows = page.locator("table#failed-jobs tr[data-role=job]")
        expect(rows).to_have_count(3)
        expect(page.locator("tr[data-role=job] a.error-line").first).to_have_text("RuntimeError: flaky")
        for job in failed[:2]:
            page.locator(f"tr[data-job-id='{job.id}'] input.select-job").check()
        expect(page.locator(".bulk-bar .selected-count")).to_have_text("2")
        page.locator(".bulk-bar button[data-action=requeue]").click()
        page.locator("#confirmation-modal-yes").click()
        expect(rows).to_have_count(1)
        expect(page.locator(f"tr[data-job-id='{failed[2].id}']")).to_have_count(1)
        consumer("--workers", "1", "--queue", "queue_one", wait_workers=1)
        page.goto(f"{base}/0/view/jobs/queue_one/finished/8/asc/1")
        expect(page.locator("table#jobs tr[data-role=job]")).to_have_count(2, timeout=20_000)
        assert csp_violations(page) == []


def test_search_from_the_navigation_bar_links_to_the_job(page, env, conn):
    from playwright.sync_api import expect

    make_queue("queue_one", conn).enqueue(SLEEP, seconds=0)
    wanted = make_queue("other", conn).enqueue("task_def.maths.fibonacci", n=21)
    with dashboard_server(env) as base:
        page.goto(base + "/")
        page.locator("#nav-search").fill(wanted.id[:8])
        page.locator("#nav-search").press("Enter")
        page.wait_for_url(re.compile(r"/0/view/search\?q="))
        row = page.locator(f"tr[data-job-id='{wanted.id}']")
        expect(row.locator(".task")).to_have_text("fibonacci")
        expect(page.locator("table#search-jobs tr[data-role=job]")).to_have_count(1)
        expect(page.locator("#search-summary")).to_contain_text("1 found")
        row.locator(".job_id a").click()
        expect(page.locator("[data-field=params_json]")).to_have_text('{"n": 21}')
        page.locator("#nav-search").fill("fibonacci")
        page.locator("#nav-search").press("Enter")
        expect(page.locator("table#search-jobs tr[data-role=job]")).to_have_count(1)
        assert csp_violations(page) == []


def test_trends_chart_draws_the_workers_real_figures(page, env, conn, consumer):
    from playwright.sync_api import expect

    from .supervision_support import FAST, enqueue_sleep, status

    consumer("--workers", "2", "--queue", "queue_one", wait_workers=2, **FAST)
    jobs = [enqueue_sleep(conn, 0.1).id for _ in range(4)]
    refused = make_queue("queue_one", conn).enqueue("task_def.scrape.scrape", url="http://10.1.2.3/")
    wait_for(lambda: all(status(conn, j) == "finished" for j in jobs) and status(conn, refused.id) == "failed", "jobs")
    with dashboard_server(env) as base:
        page.goto(f"{base}/0/view/trends")
        chart = page.locator("div.queue-chart[data-queue=queue_one]")
        expect(chart.locator("svg.chart-bars rect.bar").first).to_be_visible()
        values = chart.evaluate(
            """(node) => { const sum = {};
                node.querySelectorAll('rect.bar').forEach(r => {
                    sum[r.dataset.series] = (sum[r.dataset.series] || 0) + Number(r.dataset.value); });
                return sum; }"""
        )
        assert values == {"finished": 4, "failed": 1}
        expect(chart.locator(".ended-total")).to_have_text("5")
        assert chart.locator("svg.chart-bars rect.bar").first.bounding_box()["height"] > 0
        expect(chart.locator("svg.chart-line circle.point").first).to_be_attached()  # this minute's depth sample
        assert chart.locator("svg.chart-line circle.point").first.get_attribute("data-value") == "0"
        expect(page.locator("tr[data-task=sleep] td").nth(1)).to_have_text("4")
        assert csp_violations(page) == []
