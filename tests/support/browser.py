"""Fixtures for the browser tests: headless Chromium driven by Playwright, and a page's watch.

A pytest plugin registered by the root conftest; Playwright is imported only when a test asks
for a browser.
"""

from __future__ import annotations

import pytest

CHROMIUM = "/usr/bin/chromium"  # Debian's; `make test` installs it when missing
# As the machine's notes advise: without the background-networking flags Chromium itself calls
# out (component updates, Google's hosts), which would hide what a page requests.
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Headless Chromium driven by Playwright (never Playwright's own browser download). One
    per test: Playwright's sync API runs an event loop on this thread while it is open, and the
    other tests call asyncio.run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class PageWatch:
    """What a page did: every request's URL, console errors, uncaught exceptions, and the
    responses that failed (by URL: a console error does not say which)."""

    def __init__(self, page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "response",
            lambda response: (
                self.failed.append(f"{response.status} {response.request.method} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"{message.text} ({message.location.get('url')})")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def outside_requests(self) -> list[str]:
        """Requests that leave this machine (anything but 127.0.0.1, data: and blob:)."""
        local = ("http://127.0.0.1:", "data:", "blob:", "about:")
        return [url for url in self.requests if not url.startswith(local)]


@pytest.fixture
def watched_page(browser):
    """A fresh page (its own context: no cookies, no saved UI preference) and its watch."""
    context = browser.new_context()
    page = context.new_page()
    yield PageWatch(page)
    context.close()
