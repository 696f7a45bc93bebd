"""The HTTP API's documentation pages in a real browser (headless Chromium): they render, from
assets the grader serves itself, with no request leaving 127.0.0.1 and no console error."""

from __future__ import annotations

import pytest

from tests.conftest import PageWatch


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
