"""Submissions, rubrics and jobs: storing an essay, triggering a grade (idempotently), a job's
status, cancelling and pruning; and the worker side: claiming jobs under a lease, loading what
they grade, renewing, completing with the grade, failing and releasing them.

The status rules live in the SQL statements' guards (grader/store/sql/jobs.sql), so this module
holds no status logic of its own beyond naming which statement to run.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from grader.errors import GraderError, InvalidInputError, LeaseLostError, NotFoundError
from grader.grading.grade import Grade
from grader.jobs import GRADING_MODES, JobStatus
from grader.settings import Settings
from grader.store.queries import query

if TYPE_CHECKING:
    from grader.grading.rubric import Rubric  # imported where rubrics are parsed: Pydantic is slow


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker owns: `attempt` is the fencing token every later write must match."""

    task_id: UUID
    attempt: int
    submission_id: UUID
    rubric_id: UUID
    samples: int | None = None  # gradings to take the median of; None: GRADER_SAMPLES


@dataclass(frozen=True)
class Submission:
    submission_id: UUID
    essay: str = field(repr=False)  # personal data: kept out of any log line that shows a repr
    rubric_id: UUID
    rubric: Rubric


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_uuid(value: str | UUID, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value).strip())
    except ValueError:
        raise NotFoundError(f"{what} {str(value)[:60]!r} is not a valid id") from None


# --- client side (sync) -------------------------------------------------------------------


def save_rubric(conn: psycopg.Connection, rubric: Rubric) -> UUID:
    params = {
        "name": rubric.name,
        "definition": Jsonb(rubric.definition()),
        "content_sha256": rubric.content_sha256,
    }
    row = conn.execute(query("upsert_rubric"), params).fetchone()
    if row is None:  # another session inserted the same rubric after our snapshot: read it now
        row = conn.execute(query("upsert_rubric"), params).fetchone()
    return row["rubric_id"]


def create_submission(
    conn: psycopg.Connection,
    essay: str,
    student_ref: str | None,
    rubric_id: UUID,
    api_key_id: UUID | None = None,
) -> UUID:
    row = conn.execute(
        query("insert_submission"),
        {
            "student_ref": student_ref,
            "essay": essay,
            "content_sha256": _sha256(essay),
            "rubric_id": rubric_id,
            "api_key_id": api_key_id,
        },
    ).fetchone()
    return row["submission_id"]


def create_grading_job(
    conn: psycopg.Connection,
    submission_id: UUID,
    rubric_id: UUID | None = None,
    api_key_id: UUID | None = None,
    mode: str = "now",
) -> tuple[UUID, bool]:
    """Inserts a pending job, to be graded `mode` ('now' or 'batch'), or finds the live or
    completed job for the same submission, rubric and essay content; returns its id and
    whether it is new. With `api_key_id`, only that key's submissions exist."""
    if mode not in GRADING_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(GRADING_MODES)}, got {mode!r}")
    sub = conn.execute(query("submission_for_trigger"), {"submission_id": submission_id}).fetchone()
    if sub is None or (api_key_id is not None and sub["api_key_id"] != api_key_id):
        raise NotFoundError(f"submission {submission_id} not found")
    rubric_id = rubric_id or sub["rubric_id"]
    key = _sha256(f"{submission_id}:{rubric_id}:{sub['content_sha256']}")
    input_data = Jsonb({"submission_id": str(submission_id), "rubric_id": str(rubric_id)})
    # Two tries: the existing job may finish failed between our insert and our read, which
    # frees the key again.
    for _ in range(2):
        row = conn.execute(
            query("insert_job"),
            {
                "input_data": input_data,
                "idempotency_key": key,
                "api_key_id": api_key_id,
                "mode": mode,
            },
        ).fetchone()
        if row is not None:
            return row["task_id"], True
        row = conn.execute(query("job_by_idempotency_key"), {"idempotency_key": key}).fetchone()
        if row is not None:
            return row["task_id"], False
    raise RuntimeError("could not create or find the grading task")  # pragma: no cover


def _status_from_row(row: dict[str, Any]) -> JobStatus:
    submission_id = (row["input_data"] or {}).get("submission_id")
    return JobStatus(
        task_id=row["task_id"],
        status=row["status"],
        submission_id=UUID(submission_id) if submission_id else None,
        attempts=row["attempts"],
        error_message=row["error_message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
        flow_run_id=row["flow_run_id"],
        paused_reason=row["paused_reason"],
        mode=row["grading_mode"],
        provider_batch_id=row["provider_batch_id"],
        grade=Grade.from_row(row) if row["grade_id"] else None,
    )


def cancel_job(conn: psycopg.Connection, task_id: UUID) -> JobStatus:
    """Cancels a pending or processing job; a finished one is left as it is (GraderError)."""
    if conn.execute(query("cancel_job"), {"task_id": task_id}).fetchone() is None:
        status = job_status(conn, task_id)  # NotFoundError if there is none
        raise GraderError(f"task {task_id} is already {status.status}; left as it is")
    return job_status(conn, task_id)


def prune_finished_jobs(
    conn: psycopg.Connection, days: int, with_grades: bool, batch: int = 1000
) -> dict[str, int]:
    """Deletes finished jobs older than `days`, a batch per statement so that no lock is held
    for long; their grades too if `with_grades`."""
    jobs = grades = 0
    while True:
        rows = conn.execute(
            query("prune_finished_jobs"),
            {"days": days, "with_grades": with_grades, "batch": batch},
        ).fetchall()
        if not rows:
            return {"jobs": jobs, "grades": grades}
        jobs += len(rows)
        grades += rows[0]["grades_deleted"]


def job_status(
    conn: psycopg.Connection, task_id: UUID, api_key_id: UUID | None = None
) -> JobStatus:
    """A job's status; with `api_key_id`, only that key's jobs exist."""
    row = conn.execute(query("job_status"), {"task_id": task_id}).fetchone()
    if row is None or (api_key_id is not None and row["api_key_id"] != api_key_id):
        raise NotFoundError(f"task {task_id} not found")
    return _status_from_row(row)


def set_flow_run_id(conn: psycopg.Connection, task_id: UUID, flow_run_id: UUID) -> None:
    """Records the Prefect flow run a job was handed to."""
    conn.execute(query("set_flow_run_id"), {"task_id": task_id, "flow_run_id": flow_run_id})


# --- worker side (async) ------------------------------------------------------------------


async def unfinished_job_counts(pool: AsyncConnectionPool) -> dict[str, int]:
    """How many jobs are pending and processing (a batch's progress line)."""
    async with pool.connection() as conn:
        cur = await conn.execute(query("unfinished_job_counts"))
        return await cur.fetchone()


def claimed_job(row: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(
        task_id=row["task_id"],
        attempt=row["attempts"],
        submission_id=UUID(row["input_data"]["submission_id"]),
        rubric_id=UUID(row["input_data"]["rubric_id"]),
        samples=row["input_data"].get("samples"),
    )


def _lease(settings: Settings) -> dict[str, Any]:
    return {"worker_id": settings.worker_id, "lease_seconds": settings.lease_seconds}


async def claim_job(
    pool: AsyncConnectionPool, task_id: UUID, settings: Settings
) -> ClaimedJob | None:
    """pending -> processing for one job; None when it is not pending (or does not exist)."""
    async with pool.connection() as conn:
        cur = await conn.execute(query("claim_job"), {"task_id": task_id, **_lease(settings)})
        row = await cur.fetchone()
    return claimed_job(row) if row else None


async def claim_pending_jobs(
    pool: AsyncConnectionPool,
    limit: int,
    settings: Settings,
    flow_run_id: UUID | None = None,
    evaluation_run_id: UUID | None = None,
) -> list[ClaimedJob]:
    """pending -> processing for up to `limit` of the oldest pending jobs (with
    `evaluation_run_id`, only that evaluation run's); `flow_run_id` (the claiming flow run) is
    recorded on each."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("claim_pending_jobs"),
            {
                "limit": limit,
                "flow_run_id": flow_run_id,
                "evaluation_run_id": evaluation_run_id,
                "batch_ref": None,
                "mode": "now",
                **_lease(settings),
            },
        )
        return [claimed_job(row) for row in await cur.fetchall()]


async def fetch_job_status(pool: AsyncConnectionPool, task_id: UUID) -> JobStatus:
    async with pool.connection() as conn:
        cur = await conn.execute(query("job_status"), {"task_id": task_id})
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    return _status_from_row(row)


async def load_submission(pool: AsyncConnectionPool, job: ClaimedJob) -> Submission:
    from grader.grading.rubric import (
        parse_rubric,  # Pydantic: the worker's cost, not a status check's
    )

    async with pool.connection() as conn:
        cur = await conn.execute(
            query("load_submission"), {"task_id": job.task_id, "attempt": job.attempt}
        )
        row = await cur.fetchone()
    if row is None:
        raise LeaseLostError(
            f"task {job.task_id} attempt {job.attempt} no longer owns the job "
            "(cancelled or taken over), or its submission is gone"
        )
    return Submission(
        submission_id=row["submission_id"],
        essay=row["essay"],
        rubric_id=row["rubric_id"],
        rubric=parse_rubric(row["definition"], str(row["rubric_id"])),
    )


async def load_submissions(
    pool: AsyncConnectionPool, jobs: list[ClaimedJob]
) -> dict[UUID, Submission]:
    """load_submission for many jobs in one query, each rubric parsed once: by task id, the
    jobs whose attempt still owns them."""
    from grader.grading.rubric import parse_rubric

    async with pool.connection() as conn:
        cur = await conn.execute(
            query("load_submissions"),
            {"task_ids": [j.task_id for j in jobs], "attempts": [j.attempt for j in jobs]},
        )
        rows = await cur.fetchall()
    rubrics = {}
    for row in rows:
        if row["rubric_id"] not in rubrics:
            rubrics[row["rubric_id"]] = parse_rubric(row["definition"], str(row["rubric_id"]))
    return {
        row["task_id"]: Submission(
            submission_id=row["submission_id"],
            essay=row["essay"],
            rubric_id=row["rubric_id"],
            rubric=rubrics[row["rubric_id"]],
        )
        for row in rows
    }


async def renew_lease(pool: AsyncConnectionPool, job: ClaimedJob, lease_seconds: int) -> bool:
    """Extends the lease; False when this attempt no longer owns the job."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("renew_lease"),
            {"task_id": job.task_id, "attempt": job.attempt, "lease_seconds": lease_seconds},
        )
        return await cur.fetchone() is not None


async def reap_expired_leases(pool: AsyncConnectionPool, max_attempts: int) -> dict[str, int]:
    """Expired processing jobs back to pending (or failed after max_attempts); counts by
    new status."""
    async with pool.connection() as conn:
        cur = await conn.execute(query("reap_expired_leases"), {"max_attempts": max_attempts})
        rows = await cur.fetchall()
    return {
        "requeued": sum(r["status"] == "pending" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
    }


async def release_worker_jobs(
    pool: AsyncConnectionPool,
    settings: Settings,
    reason: str,
    task_id: UUID | None = None,
    mode: str | None = None,
) -> int:
    """Hands this worker's processing jobs (or one of them) back at once, to be graded `mode`
    from now on if given; how many."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("release_worker_jobs"),
            {
                "worker_id": settings.worker_id,
                "max_attempts": settings.max_attempts,
                "reason": reason[:2000],
                "task_id": task_id,
                "mode": mode,
            },
        )
        return len(await cur.fetchall())


async def complete_job(pool: AsyncConnectionPool, job: ClaimedJob, grade: Grade) -> UUID:
    """Writes the grade and marks the job completed, atomically, if this attempt owns it."""
    criteria = [asdict(c) for c in grade.criteria]
    summary = {
        "total_score": grade.total_score,
        "max_score": grade.max_score,
        "model": grade.model,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("complete_job_with_grade"),
            {
                "task_id": job.task_id,
                "attempt": job.attempt,
                "result": Jsonb(summary),
                "submission_id": job.submission_id,
                "rubric_id": job.rubric_id,
                "total_score": grade.total_score,
                "max_score": grade.max_score,
                "criteria": Jsonb(criteria),
                "feedback": grade.feedback,
                "model": grade.model,
                "prompt_tokens": grade.prompt_tokens,
                "completion_tokens": grade.completion_tokens,
                "model_attempts": grade.model_attempts,
                "cost_usd": grade.cost_usd,
                "injection_signals": list(grade.injection_signals),
                "prompt_version": grade.prompt_version,
                "disagreement": list(grade.disagreement),
                "review_state": grade.review_state,
                "review_reasons": Jsonb(list(grade.review_reasons)),
            },
        )
        row = await cur.fetchone()
    if row is None:
        raise LeaseLostError(f"task {job.task_id} attempt {job.attempt} no longer owns the job")
    return row["grade_id"]


async def fail_job(pool: AsyncConnectionPool, job: ClaimedJob, reason: str) -> bool:
    """processing -> failed; False when this attempt no longer owns the job."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("fail_job"),
            {"task_id": job.task_id, "attempt": job.attempt, "error_message": reason[:2000]},
        )
        return await cur.fetchone() is not None
