"""`grader` commands as separate processes where the process is the point: two batch runs
racing for the same jobs, and `grader db stop` after a user of the server was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from model_simulator import LLMSimulator
from tests.integration.test_cli import ESSAY
from tests.support.cli import run_cli
from tests.support.session import REPO


def test_two_concurrent_batch_runs_grade_each_job_exactly_once(
    conn: psycopg.Connection, simulator: LLMSimulator, tmp_path: Path
) -> None:
    from essay_grader import start_grading_job, submit_essay

    # slow calls until both runs hold jobs (each starts its own Prefect, which can take a
    # while on a loaded machine), then fast ones
    simulator.config.latency_ms = 2000
    jobs = 60
    for i in range(jobs):
        start_grading_job(submit_essay(f"{ESSAY}\nDraft {i}."))
    results: list = [None, None]

    def batch(slot: int) -> None:  # a process each: each runs its own flows and Prefect client
        results[slot] = run_cli(
            "run-pending",
            "--limit",
            "1000",
            "--concurrency",
            "5",
            "--json",
            env={"GRADER_REQUEST_TIMEOUT": "30"},
        )

    threads = [threading.Thread(target=batch, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        holders = conn.execute(
            "SELECT count(DISTINCT worker_id) AS n FROM grader.background_tasks "
            "WHERE status = 'processing'"
        ).fetchone()["n"]
        if holders == 2:
            break
        time.sleep(0.1)
    simulator.config.latency_ms = 50
    for t in threads:
        t.join()
    outcomes = [json.loads(r.stdout) for r in results]
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sum(o["completed"] for o in outcomes) == jobs
    rows = conn.execute(
        "SELECT t.status, t.attempts, t.worker_id, count(g.grade_id) AS grades "
        "FROM grader.background_tasks t LEFT JOIN grader.grades g USING (task_id) "
        "GROUP BY t.task_id"
    ).fetchall()
    assert len(rows) == jobs
    assert all(r["status"] == "completed" and r["attempts"] == 1 and r["grades"] == 1 for r in rows)
    # one model call per job: no job was worked on twice
    assert len(simulator.requests) == jobs
    assert len({r.prompt_sha256 for r in simulator.requests}) == jobs
    # both batch runs did part of the work
    assert all(o["completed"] > 0 for o in outcomes), outcomes


def test_db_stop_stops_the_server_even_after_a_user_of_it_was_killed(tmp_path: Path) -> None:
    """A grader process killed with -9 never unregisters from the embedded server; `grader db
    stop` (and so `grader down`) must still stop the server, and say so only when it did."""
    env = {**os.environ, "GRADER_HOME": str(tmp_path / "home")}
    env.pop("DATABASE_URL", None)
    pgdata = tmp_path / "home" / "pgdata"
    user = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from grader.store.connections import database_url; "
            "from grader.settings import Settings; "
            "database_url(Settings.from_env()); print('up', flush=True)"
            "; import time; time.sleep(120)",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert user.stdout.readline().strip() == "up"
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    finally:
        os.kill(user.pid, signal.SIGKILL)
        user.wait(30)

    stopped = run_cli("db", "stop", env={"GRADER_HOME": env["GRADER_HOME"]})
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the embedded PostgreSQL" in stopped.stdout
    assert stopped.stderr == ""  # not even a library's warning
    assert not (pgdata / "postmaster.pid").exists()
    # pg_ctl returns when the pid file is gone; the process exits a moment later
    deadline = time.monotonic() + 10
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.kill(postmaster, 0)
            time.sleep(0.05)
    again = run_cli("db", "stop", env={"GRADER_HOME": env["GRADER_HOME"]})
    assert (again.returncode, again.stdout.strip()) == (0, "not running")
