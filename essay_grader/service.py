"""The grading service: submit an essay, start a grading job, check on it, cancel it, wait for
the grade, or grade a submission from start to finish. The HTTP API, the command line and the
Python client's functions (essay_grader.client) all call it.

`start_grading_job` only stores the job and returns its id at once; a worker grades it (a Prefect
deployment, `grader run-pending`, or the scheduled batch flow). Waiting listens for the
database's notification that a job finished, and polls every `poll_interval` seconds as well, so
a missed notification costs at most one interval.

A `GradingService` is an edge: give it settings (and, if you have one, a connection pool), or let
it read the environment once.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from essay_grader.runner import run_here
from grader import handoff
from grader.errors import GradingFailedError, GradingTimeoutError
from grader.jobs import JobStatus
from grader.settings import Settings
from grader.store.connections import get_pool
from grader.store.jobs import (
    cancel_job,
    create_grading_job,
    create_submission,
    job_status,
    parse_uuid,
    save_rubric,
)
from grader.store.listeners import listener_alive, listening_for_finished

if TYPE_CHECKING:
    from grader.grading.rubric import Rubric

# A rubric: a Rubric, the path of a rubric file, or None for the submission's (or the default).
RubricArg: TypeAlias = "Rubric | str | Path | None"


class GradingService:
    """Grading on one database: the settings' (through the process's pool for it), or `pool`."""

    def __init__(self, settings: Settings | None = None, pool: ConnectionPool | None = None):
        self.settings = settings or Settings.from_env()
        self._pool = pool

    @property
    def pool(self) -> ConnectionPool:
        """The given pool, or the process's pool for these settings' database (opened, and its
        schema checked, on first use)."""
        if self._pool is None:
            self._pool = get_pool(self.settings)
        return self._pool

    def _rubric_id(self, conn: psycopg.Connection, rubric: RubricArg) -> UUID:
        from grader.grading.rubric import Rubric, load_rubric

        if not isinstance(rubric, Rubric):
            rubric = load_rubric(rubric)
        return save_rubric(conn, rubric)

    def submit_essay(
        self,
        text: str,
        student_ref: str | None = None,
        rubric: RubricArg = None,
        *,
        api_key_id: UUID | None = None,
    ) -> UUID:
        """Stores an essay to grade (with the rubric to grade it by, the default one if None)
        and returns its submission id. An empty, binary or over-long essay is refused with
        InvalidEssayError and nothing is stored. `api_key_id` (the HTTP API's caller) owns it."""
        # Pydantic (the rubric models) is imported by the calls that need it, not by a status check
        from grader.grading.essay import check_essay, check_student_ref

        check_essay(text, self.settings.max_essay_chars)
        check_student_ref(student_ref)
        with self.pool.connection() as conn:
            rubric_id = self._rubric_id(conn, rubric)
            return create_submission(conn, text, student_ref, rubric_id, api_key_id)

    def start_grading_job(
        self,
        submission_id: UUID | str,
        rubric: RubricArg = None,
        *,
        api_key_id: UUID | None = None,
        mode: str = "now",
    ) -> UUID:
        """Creates a pending grading job and returns its task id at once. Asking again for the
        same submission, rubric and essay while a job is pending, processing or completed
        returns that job's id. `rubric` overrides the one given at submission. With a Prefect
        API configured, a new job is handed to the grade-submission deployment in the
        background, after the commit. With `api_key_id`, only that key's submissions. With
        `mode="batch"`, the job waits for the next grade-pending-batch run instead (the
        provider's Batch API: half the price, within 24 hours)."""
        submission_id = parse_uuid(submission_id, "submission")
        with self.pool.connection() as conn:
            rubric_id = self._rubric_id(conn, rubric) if rubric is not None else None
            task_id, created = create_grading_job(conn, submission_id, rubric_id, api_key_id, mode)
            grader = self._who_grades(conn) if created and mode == "now" else None
        if grader == "prefect":
            handoff.hand_off(self.settings, task_id)
        return task_id

    def _who_grades(self, conn: psycopg.Connection) -> str:
        """Who grades a job that is pending: the one place this is decided. A listening worker
        (grade-on-arrival) if one is alive: it heard the job's notification and takes it at
        once. Else the Prefect deployment a new job is handed to, if one is configured. Else
        nobody but this process: `grade_job` grades it here."""
        if listener_alive(conn):
            return "listener"
        return "prefect" if handoff.enabled(self.settings) else "here"

    def check_grading_status(
        self, task_id: UUID | str, *, api_key_id: UUID | None = None
    ) -> JobStatus:
        """Status, timestamps, attempts, error and, once completed, the grade; for a pending
        job while a spending cap pauses grading, the reason. With `api_key_id`, only that
        key's jobs."""
        task_id = parse_uuid(task_id, "task")
        with self.pool.connection() as conn:
            return job_status(conn, task_id, api_key_id)

    def cancel_grading_job(self, task_id: UUID | str) -> JobStatus:
        """Cancels a pending job at once; a processing one stops before its next step (or at
        its worker's next heartbeat). A finished job is left as it is: GraderError says so."""
        task_id = parse_uuid(task_id, "task")
        with self.pool.connection() as conn:
            return cancel_job(conn, task_id)

    def wait_for_grade(
        self,
        task_id: UUID | str,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        listen: bool = True,
    ) -> JobStatus:
        """Blocks until the job is finished; returns its status if completed, raises
        GradingFailedError if it failed or was cancelled, GradingTimeoutError after `timeout`.
        With `listen`, a finished job's NOTIFY wakes the wait at once; polling every
        `poll_interval` seconds covers a missed notification."""
        task_id = parse_uuid(task_id, "task")
        deadline = time.monotonic() + timeout
        listening = listening_for_finished(self.settings) if listen else nullcontext()
        with listening as listener:
            while True:
                status = self.check_grading_status(task_id)
                if status.status == "completed":
                    return status
                if status.finished:
                    raise GradingFailedError(
                        f"task {task_id} {status.status}: "
                        f"{status.error_message or 'no reason given'}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    hint = (
                        "; is a worker running? (grader run-pending)"
                        if status.status == "pending"
                        else ""
                    )
                    raise GradingTimeoutError(
                        f"task {task_id} is still {status.status} after {timeout:g}s{hint}"
                    )
                wait = min(poll_interval, remaining)
                if listen:
                    # wake on any finished job's notification, or after `wait` at the latest
                    for _ in listener.notifies(timeout=wait, stop_after=1):
                        pass
                else:
                    time.sleep(wait)

    def grade_job(
        self, task_id: UUID | str, timeout: float = 300.0, poll_interval: float = 2.0
    ) -> JobStatus:
        """Waits for a job's grade. When no worker will take it (`_who_grades`), a pending job
        is graded here, in this process, by the same flow a worker runs (`grader grade --wait`
        and `grade_submission` both come here)."""
        task_id = parse_uuid(task_id, "task")
        with self.pool.connection() as conn:
            here = job_status(conn, task_id).status == "pending"
            here = here and self._who_grades(conn) == "here"
        if here:
            self.settings.require_model()
            from flows.grading import grade_submission  # Prefect: only on this path

            run_here(self.settings, lambda: grade_submission(task_id, return_state=True))
        return self.wait_for_grade(task_id, timeout=timeout, poll_interval=poll_interval)

    def grade_submission(
        self,
        submission_id: UUID | str,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        rubric: RubricArg = None,
    ) -> JobStatus:
        """Starts (or finds) the grading job for a submission and waits for its grade
        (grading it here when no worker will: see `grade_job`)."""
        task_id = self.start_grading_job(submission_id, rubric=rubric)
        return self.grade_job(task_id, timeout=timeout, poll_interval=poll_interval)
