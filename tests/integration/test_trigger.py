"""Submitting essays and triggering jobs: idempotent, clear about bad input, nothing half-stored."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from essay_grader import check_grading_status, start_grading_job, submit_essay
from grader.errors import InvalidEssayError, NotFoundError

ESSAY = "Cities should plant more trees.\n\nShade lowers summer temperatures on streets."


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) AS n FROM grader.{table}").fetchone()["n"]


def test_trigger_stores_a_pending_job_and_returns_its_id(conn: psycopg.Connection) -> None:
    submission_id = submit_essay(ESSAY, student_ref="s-1")
    task_id = start_grading_job(submission_id)
    status = check_grading_status(task_id)
    assert status.status == "pending"
    assert status.submission_id == submission_id
    assert status.attempts == 0
    assert status.started_at is None and status.completed_at is None
    assert status.grade is None
    row = conn.execute(
        "SELECT input_data FROM grader.background_tasks WHERE task_id = %s", (task_id,)
    ).fetchone()
    # the job record carries ids, never the essay or the student reference
    assert set(row["input_data"]) == {"submission_id", "rubric_id"}


def test_asking_again_returns_the_same_task(conn: psycopg.Connection) -> None:
    submission_id = submit_essay(ESSAY)
    first = start_grading_job(submission_id)
    assert start_grading_job(str(submission_id)) == first
    assert _count(conn, "background_tasks") == 1


def test_another_rubric_is_another_job(conn: psycopg.Connection, tmp_path) -> None:
    rubric = tmp_path / "short.json"
    rubric.write_text(
        '{"name": "Short", "criteria": [{"key": "clarity", "name": "Clarity", '
        '"description": "Is it clear?", "max_points": 5}]}'
    )
    submission_id = submit_essay(ESSAY)
    assert start_grading_job(submission_id) != start_grading_job(submission_id, rubric=rubric)
    assert _count(conn, "background_tasks") == 2


def test_a_failed_job_does_not_block_a_new_one(conn: psycopg.Connection) -> None:
    submission_id = submit_essay(ESSAY)
    first = start_grading_job(submission_id)
    conn.execute(
        "UPDATE grader.background_tasks SET status = 'failed', completed_at = now() "
        "WHERE task_id = %s",
        (first,),
    )
    second = start_grading_job(submission_id)
    assert second != first
    assert check_grading_status(second).status == "pending"


def test_unknown_submission_is_a_clear_error(conn: psycopg.Connection) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"submission {missing} not found"):
        start_grading_job(missing)
    with pytest.raises(NotFoundError, match="not a valid id"):
        start_grading_job("not-a-uuid")
    with pytest.raises(NotFoundError, match="not found"):
        check_grading_status(uuid.uuid4())
    assert _count(conn, "background_tasks") == 0


@pytest.mark.parametrize(
    ("essay", "reason"),
    [
        ("", "empty"),
        ("   \n\t  ", "empty"),
        ("binary\x00data", "NUL"),
        ("x" * 1_048_576, "limit is 100,000"),
    ],
    ids=["empty", "whitespace", "binary", "one-megabyte"],
)
def test_ungradable_essays_are_refused_and_nothing_is_stored(
    conn: psycopg.Connection, essay: str, reason: str
) -> None:
    with pytest.raises(InvalidEssayError, match=reason):
        submit_essay(essay)
    assert _count(conn, "submissions") == 0
