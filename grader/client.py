"""The Python client: submit an essay, start a grading job, check on it, or wait for the grade.

These mirror the old web frontend's startGradingJob, checkGradingStatus and gradeSubmission.
`start_grading_job` only stores the job and returns its id at once; a worker grades it (a
Prefect deployment, `grader run-pending`, or the scheduled batch flow). Waiting listens for the
database's notification that a job finished, and polls every `poll_interval` seconds as well,
so a missed notification costs at most one interval.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from uuid import UUID

import psycopg

from grader import handoff, jobs
from grader.db import database_url, get_pool
from grader.errors import GradingFailedError, GradingTimeoutError
from grader.models import JobStatus, Rubric, check_essay, check_student_ref, load_rubric
from grader.settings import Settings

RubricArg = Rubric | str | Path | None


def _resolve_rubric(conn: psycopg.Connection, rubric: RubricArg) -> UUID:
    if not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric)
    return jobs.save_rubric(conn, rubric)


def submit_essay(
    text: str,
    student_ref: str | None = None,
    rubric: RubricArg = None,
    *,
    api_key_id: UUID | None = None,
) -> UUID:
    """Stores an essay to grade (with the rubric to grade it by, the default one if None) and
    returns its submission id. An empty, binary or over-long essay is refused with
    InvalidEssayError and nothing is stored. `api_key_id` (the HTTP API's caller) owns it."""
    settings = Settings.from_env()
    check_essay(text, settings.max_essay_chars)
    check_student_ref(student_ref)
    with get_pool(settings).connection() as conn:
        rubric_id = _resolve_rubric(conn, rubric)
        return jobs.create_submission(conn, text, student_ref, rubric_id, api_key_id)


def start_grading_job(
    submission_id: UUID | str, rubric: RubricArg = None, *, api_key_id: UUID | None = None
) -> UUID:
    """Creates a pending grading job and returns its task id at once. Asking again for the same
    submission, rubric and essay while a job is pending, processing or completed returns that
    job's id. `rubric` overrides the one given at submission. With a Prefect API configured
    (PREFECT_API_URL), a new job is handed to the grade-submission deployment in the background,
    after the commit. With `api_key_id`, only that key's submissions can be graded."""
    settings = Settings.from_env()
    submission_id = jobs.parse_uuid(submission_id, "submission")
    with get_pool(settings).connection() as conn:
        rubric_id = _resolve_rubric(conn, rubric) if rubric is not None else None
        task_id, created = jobs.create_grading_task(conn, submission_id, rubric_id, api_key_id)
    if created and handoff.enabled(settings):
        handoff.hand_off(settings, task_id)
    return task_id


def check_grading_status(task_id: UUID | str, *, api_key_id: UUID | None = None) -> JobStatus:
    """Status, timestamps, attempts, error and, once completed, the grade; for a pending job
    while a spending cap pauses grading, the reason. With `api_key_id`, only that key's jobs."""
    task_id = jobs.parse_uuid(task_id, "task")
    with get_pool().connection() as conn:
        return jobs.task_status(conn, task_id, api_key_id)


def cancel_grading_job(task_id: UUID | str) -> JobStatus:
    """Cancels a pending job at once; a processing one stops before its next step (or at its
    worker's next heartbeat). A finished job is left as it is: GraderError says so."""
    task_id = jobs.parse_uuid(task_id, "task")
    with get_pool().connection() as conn:
        return jobs.cancel_task(conn, task_id)


def wait_for_grade(
    task_id: UUID | str,
    timeout: float = 300.0,
    poll_interval: float = 2.0,
    listen: bool = True,
) -> JobStatus:
    """Blocks until the job is finished; returns its status if completed, raises
    GradingFailedError if it failed or was cancelled, GradingTimeoutError after `timeout`.
    With `listen`, a finished job's NOTIFY wakes the wait at once; polling every
    `poll_interval` seconds covers a missed notification."""
    task_id = jobs.parse_uuid(task_id, "task")
    deadline = time.monotonic() + timeout
    listening = psycopg.connect(database_url(), autocommit=True) if listen else nullcontext()
    with listening as listener:
        if listen:
            listener.execute("LISTEN grader_task_finished")
        while True:
            status = check_grading_status(task_id)
            if status.status == "completed":
                return status
            if status.finished:
                raise GradingFailedError(
                    f"task {task_id} {status.status}: {status.error_message or 'no reason given'}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GradingTimeoutError(
                    f"task {task_id} is still {status.status} after {timeout:g}s"
                    + (
                        "; is a worker running? (grader run-pending)"
                        if status.status == "pending"
                        else ""
                    )
                )
            wait = min(poll_interval, remaining)
            if listen:
                # wake on any finished job's notification, or after `wait` at the latest
                for _ in listener.notifies(timeout=wait, stop_after=1):
                    pass
            else:
                time.sleep(wait)


def grade_submission(
    submission_id: UUID | str,
    timeout: float = 300.0,
    poll_interval: float = 2.0,
    rubric: RubricArg = None,
) -> JobStatus:
    """Starts (or finds) the grading job for a submission and waits for its grade."""
    task_id = start_grading_job(submission_id, rubric=rubric)
    return wait_for_grade(task_id, timeout=timeout, poll_interval=poll_interval)
