"""Pages people open, in a real browser (headless Chromium): the HTTP API's documentation
renders from assets the grader serves itself, and the weekly report's HTML shows its charts and
its SIMULATED banner; no request leaves the machine and no console error. (The review page:
test_review_page.py.)"""

from __future__ import annotations

import pytest

from grader.grading.pricing import DEFAULT_PRICES
from reports import agreement
from reports.render import CHARTS, write_report
from reports.weekly import build_report
from tests.integration.test_report import _simulated_week, _week
from tests.support.browser import PageWatch
from tests.unit.test_agreement import _results, _row, _rubric, _run


@pytest.mark.parametrize(
    ("path", "script"),
    [("/docs", "/static-offline-docs/swagger-ui-bundle.js"), ("/redoc", "/redoc-assets/")],
)
def test_api_docs_render_offline(api: str, watched_page: PageWatch, path: str, script: str):
    page = watched_page.page
    page.goto(api + path, wait_until="networkidle")
    # a known operation's name, rendered by the page's script from /openapi.json
    page.get_by_text("Create Submission", exact=True).first.wait_for(state="visible")
    assert watched_page.outside_requests() == []
    assert watched_page.errors == []
    assert any(script in url for url in watched_page.requests)  # served here, not by a CDN


def test_weekly_report_page_in_a_browser(conn, tmp_path, watched_page: PageWatch):
    """The report as a teacher opens it: every chart loads, no console error, nothing fetched
    from elsewhere, and the SIMULATED banner is the first thing on the page."""
    _simulated_week(conn)
    folder = write_report(build_report(conn, _week(), DEFAULT_PRICES), tmp_path)
    page = watched_page.page
    page.goto((folder / "report.html").as_uri(), wait_until="load")
    images = page.locator("img")
    assert images.count() == len(CHARTS)
    for i in range(images.count()):
        loaded = images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded, images.nth(i).get_attribute("src")
    banner = page.get_by_role("alert")
    assert banner.is_visible() and banner.inner_text().startswith("SIMULATED:")
    first = page.locator("body > *:not(h1)").first
    assert first.get_attribute("class") == "simulated"
    assert watched_page.errors == [] and watched_page.failed == []
    here = folder.as_uri() + "/"
    assert [u for u in watched_page.outside_requests() if not u.startswith(here)] == []
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def test_agreement_report_page_in_a_browser(tmp_path, watched_page: PageWatch):
    """An evaluation report: both charts load, no console error, the SIMULATED banner first."""
    rows = [
        _row(str(i), {"x": i % 3, "y": (i + 1) % 3}, {"x": (i + 1) % 3, "y": (i + 1) % 3})
        for i in range(30)
    ]
    results = _results(rows, model="simulated:gpt-4o-mini")
    folder = agreement.write_report(
        agreement.compute(_run(_rubric("x", "y", top=2)), *results), tmp_path
    )
    page = watched_page.page
    page.goto((folder / "report.html").as_uri(), wait_until="load")
    images = page.locator("img")
    assert images.count() == 2
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_role("alert").inner_text().startswith("SIMULATED:")
    assert page.locator("body > *:not(h1)").first.get_attribute("class") == "simulated"
    assert page.get_by_text("QWK", exact=True).first.is_visible()
    assert watched_page.errors == [] and watched_page.failed == []
