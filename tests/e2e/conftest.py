"""End-to-end tests: real processes as a user runs them (a `grader up` stack, workers killed
with -9, the wheel in a fresh virtualenv, the demo, a headless browser), on the session's
PostgreSQL and Prefect server."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _services(prefect_api: str, fresh_default_service: None) -> None:
    """Every test here runs with the session's Prefect server up, as every `grader` it starts
    is pointed at it."""
