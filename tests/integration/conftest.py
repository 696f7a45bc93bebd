"""Integration tests: a real PostgreSQL (a fresh database per test that asks for one) and the
session's Prefect server, the simulator and the API in threads, `grader` commands in-process
(tests.support.cli.run_main)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _services(prefect_api: str, fresh_default_service: None) -> None:
    """Every test here may run a flow in this process: the session's Prefect server is up."""
