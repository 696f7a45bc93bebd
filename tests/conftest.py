"""What every test needs, whatever its level: a private environment set before anything imports
Prefect, the level's marker, and a session that leaves no process behind.

The tests are sorted by cost: tests/unit (no PostgreSQL, no Prefect, no subprocess: seconds),
tests/integration (a real PostgreSQL and Prefect server for the session, the simulator and the
API in threads, `grader` commands run in-process), tests/e2e (real processes: a `grader up`
stack, workers killed with -9, the wheel, the demo, a browser). The fixtures for the services
are plugins (tests/support/services.py and browser.py) that start nothing until a test asks;
tests/integration and tests/e2e ask for the session's Prefect server for each of their tests.

Nothing outlives the session: the Prefect server runs in its own process group and is stopped
at the end, and any process a test left behind is killed (and named) when the session finishes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.support.session import SESSION_DIR  # first: sets the environment Prefect reads

pytest_plugins = ["tests.support.services", "tests.support.browser"]

LEVELS = ("unit", "integration", "e2e")
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path factory reads the option
def pytest_configure(config: pytest.Config) -> None:
    """tmp_path folders in this session's folder unless --basetemp says otherwise. Not under
    /tmp/pytest-of-USER: every pytest session that starts (another run on the same machine)
    resets that folder to 0700, and the embedded PostgreSQL, which runs as its own user and
    opened the way to its data directory, can then no longer reach it (pg_ctl stop fails)."""
    if not config.option.basetemp:
        config.option.basetemp = str(SESSION_DIR / "tmp")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test with its level, the folder it is in (`pytest -m unit` and the like)."""
    for item in items:
        level = item.path.relative_to(TESTS).parts[0]
        if level not in LEVELS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in tests/{'|'.join(LEVELS)}")
        item.add_marker(level)


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
    (a server, a worker, a whole stack) would otherwise outlive the suite and load the next.
    Then the session's folder goes (its PostgreSQL was stopped with the last test)."""
    import psutil

    roots = (str(SESSION_DIR), str(session.config._tmp_path_factory.getbasetemp()))  # --basetemp
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
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
