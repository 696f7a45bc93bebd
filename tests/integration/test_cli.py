"""The `grader` command line, run in-process through main(argv) against real services."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from model_simulator import LLMSimulator, parse_fault_rates
from tests.support.cli import run_main

ESSAY = "Libraries matter more than ever.\n\nThey offer quiet, free space and trusted help.\n"


def _assert_one_line_error(done, needle: str, code: int = 1) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_submit_grade_wait_status_and_jobs(
    database_url: str, simulator: LLMSimulator, tmp_path: Path
) -> None:
    essay = tmp_path / "essay.txt"
    essay.write_text(ESSAY)
    submitted = run_main("submit", str(essay), "--student-ref", "pupil-7", "--json")
    assert submitted.returncode == 0, submitted.stderr
    submission_id = json.loads(submitted.stdout)["submission_id"]

    graded = run_main("grade", submission_id, "--wait", "--json")
    assert graded.returncode == 0, graded.stderr
    result = json.loads(graded.stdout)
    assert result["status"] == "completed"
    assert result["grade"]["simulated"] is True
    assert result["grade"]["total_score"] == sum(c["score"] for c in result["grade"]["criteria"])
    assert "ERROR" not in graded.stderr and "Traceback" not in graded.stderr

    again = run_main("grade", submission_id)  # idempotent: the same task id
    assert again.stdout.strip() == result["task_id"]

    status = run_main("status", result["task_id"])
    assert status.returncode == 0
    assert "completed" in status.stdout and "SIMULATED" in status.stdout

    recent = json.loads(run_main("jobs", "recent", "--json").stdout)
    assert [r["task_id"] for r in recent] == [result["task_id"]]
    assert recent[0]["duration_seconds"] > 0
    stats = json.loads(run_main("jobs", "stats", "--json").stdout)
    assert stats["completed"] == 1 and stats["failed"] == 0
    assert stats["min_seconds"] <= stats["avg_seconds"] <= stats["max_seconds"]
    assert json.loads(run_main("jobs", "failed", "--json").stdout) == []
    # the student reference never leaves the submissions table
    assert "pupil-7" not in graded.stdout + graded.stderr + status.stdout


def test_failed_jobs_view_shows_reason_and_input(
    database_url: str, simulator: LLMSimulator, tmp_path: Path
) -> None:
    simulator.config.script = ["401"]
    essay = tmp_path / "essay.txt"
    essay.write_text(ESSAY)
    submission_id = run_main("submit", str(essay)).stdout.strip()
    graded = run_main("grade", submission_id, "--wait")
    _assert_one_line_error(graded, "failed: model API error 401 (not retried)")
    failed = json.loads(run_main("jobs", "failed", "--json").stdout)
    assert len(failed) == 1
    assert "401" in failed[0]["error_message"]
    assert failed[0]["input_data"]["submission_id"] == submission_id


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["status", "not-a-uuid"], "is not a valid id", 1),
        (["status", "00000000-0000-0000-0000-000000000000"], "not found", 1),
        (["grade", "00000000-0000-0000-0000-000000000000"], "submission", 1),
        (["submit", "/no/such/file.txt"], "cannot read /no/such/file.txt", 1),
        (["run-pending", "--limit", "0"], "must be at least 1", 2),
        (["jobs", "everything"], "invalid choice", 2),
        (["simulate-llm", "--faults", "429=2"], "--faults", 1),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    database_url: str, args: list[str], needle: str, code: int
) -> None:
    _assert_one_line_error(run_main(*args), needle, code)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty"), (b"\xff\xfe\x00\x01binary", "not UTF-8 text"), (b"a\x00b", "NUL")],
    ids=["empty", "not-utf8", "nul"],
)
def test_submit_refuses_ungradable_files(
    conn: psycopg.Connection, tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "essay.txt"
    path.write_bytes(content)
    _assert_one_line_error(run_main("submit", str(path)), needle)
    assert conn.execute("SELECT count(*) AS n FROM grader.submissions").fetchone()["n"] == 0


def test_unreachable_database_is_one_line() -> None:
    done = run_main(
        "status",
        "00000000-0000-0000-0000-000000000000",
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"},
    )
    _assert_one_line_error(done, "cannot connect to the database")


def test_schema_behind_asks_for_migrate(pg_admin_url: str) -> None:
    name = "grader_test_unmigrated"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    try:
        done = run_main("jobs", "recent", env={"DATABASE_URL": url})
        _assert_one_line_error(done, "run `grader migrate`")
        migrated = run_main("migrate", env={"DATABASE_URL": url})
        assert migrated.returncode == 0 and "applied 0001_initial_schema.sql" in migrated.stdout
        assert "up to date" in run_main("migrate", env={"DATABASE_URL": url}).stdout
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_run_pending_over_200_jobs_with_injected_faults_completes_all(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    """The issue's acceptance run: 10% 429s and 5% 500s, every job completed, one grade each."""
    from essay_grader import start_grading_job, submit_essay

    simulator.config.fault_rates = parse_fault_rates("429=0.10,500=0.05")
    simulator.config.seed = 2
    for i in range(200):
        start_grading_job(submit_essay(f"{ESSAY}\nSubmission {i}."))
    started = time.monotonic()
    done = run_main(
        "run-pending",
        "--limit",
        "200",
        "--concurrency",
        "20",
        "--json",
        env={"GRADER_MODEL_RETRIES": "8"},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["completed"] == 200, summary
    counts = conn.execute(
        "SELECT count(*) FILTER (WHERE t.status = 'completed') AS completed, "
        "count(DISTINCT g.task_id) AS graded, count(g.grade_id) AS grades, "
        "sum(g.model_attempts) AS calls "
        "FROM grader.background_tasks t LEFT JOIN grader.grades g USING (task_id)"
    ).fetchone()
    assert counts["completed"] == counts["graded"] == counts["grades"] == 200
    faults = [r.fault for r in simulator.requests]
    assert faults.count("429") > 0 and faults.count("500") > 0
    assert counts["calls"] == len(simulator.requests)  # every call is accounted for in a grade
    print(
        f"\n200 jobs with injected faults: {elapsed:.1f}s wall, {len(faults)} model calls, "
        f"{faults.count('429')} x 429, {faults.count('500')} x 500"
    )
