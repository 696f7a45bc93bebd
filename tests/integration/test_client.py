"""The Python client's waiting side: the grade arrives, failures and timeouts name the task."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from essay_grader import (
    check_grading_status,
    grade_submission,
    start_grading_job,
    submit_essay,
    wait_for_grade,
)
from flows.grading import grade_pending
from grader.errors import GradingFailedError, GradingTimeoutError
from model_simulator import LLMSimulator

ESSAY = "Public transport should be free.\n\nIt cuts traffic and helps families save money."


def _worker_after(delay: float) -> threading.Thread:
    """A batch worker that starts grading after `delay` seconds, in its own thread and loop."""

    def run() -> None:
        time.sleep(delay)
        asyncio.run(grade_pending(limit=10, concurrency=2))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_grade_submission_returns_the_grade_once_a_worker_grades_it(
    database_url: str, simulator: LLMSimulator
) -> None:
    submission_id = submit_essay(ESSAY)
    worker = _worker_after(0.5)
    status = grade_submission(submission_id, timeout=120, poll_interval=0.5)
    worker.join()
    assert status.status == "completed"
    assert status.grade is not None and status.grade.simulated
    assert status.submission_id == submission_id


def test_waiting_wakes_on_the_finish_notification_not_the_poll(
    database_url: str, simulator: LLMSimulator
) -> None:
    """With a 60 s poll interval, only LISTEN/NOTIFY can return the grade within seconds."""
    start_grading_job(submit_essay(ESSAY))
    asyncio.run(grade_pending(limit=1))  # warm Prefect up so the next run is quick
    task_id = start_grading_job(submit_essay(ESSAY + " Again."))
    worker = _worker_after(1.0)
    started = time.monotonic()
    status = wait_for_grade(task_id, timeout=120, poll_interval=60)
    waited = time.monotonic() - started
    worker.join()
    assert status.status == "completed"
    assert waited < 30, f"waited {waited:.1f}s: the notification did not wake the waiter"


def test_failed_job_raises_an_error_naming_the_task(
    database_url: str, simulator: LLMSimulator
) -> None:
    simulator.config.script = ["400"]
    task_id = start_grading_job(submit_essay(ESSAY))
    asyncio.run(grade_pending(limit=1))
    with pytest.raises(GradingFailedError, match=f"task {task_id} failed: model API error 400"):
        wait_for_grade(task_id, timeout=5)


def test_timeout_names_the_task_and_says_nobody_is_grading(database_url: str) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))
    with pytest.raises(GradingTimeoutError, match=f"task {task_id} is still pending after 0.5s"):
        wait_for_grade(task_id, timeout=0.5, poll_interval=0.1)
    assert check_grading_status(task_id).status == "pending"  # nothing changed by giving up
