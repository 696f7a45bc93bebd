"""The grading flows: one job on demand (`grade_submission`) and pending work in bulk
(`grade_pending`). Both claim jobs in the database first (pending -> processing, with a lease),
then run the same four tasks per job; the database, not Prefect's queue, makes a job durable.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import openai
from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from psycopg_pool import AsyncConnectionPool

from grader.db import open_async_pool
from grader.errors import GraderError
from grader.jobs import ClaimedJob, LeaseLostError, fetch_task_status
from grader.llm import describe_failure, model_client
from grader.settings import Settings
from tasks.grading import (
    call_openai,
    claim_pending,
    claim_task,
    load_submission,
    mark_failed,
    parse_score,
    persist_result,
)


async def grade_claimed_job(
    pool: AsyncConnectionPool, llm: openai.AsyncOpenAI, settings: Settings, job: ClaimedJob
) -> str:
    """Runs the four tasks for a job this worker owns; returns how the job ended."""
    try:
        submission = await load_submission(pool, job, settings.max_essay_chars)
        reply = await call_openai(llm, settings.model, submission)
        grade = await parse_score(reply, submission.rubric)
        await persist_result(pool, job, grade)
        return "completed"
    except LeaseLostError:
        return "lost"
    except Exception as exc:
        owned = await mark_failed(pool, job, describe_failure(exc))
        return "failed" if owned else "lost"


def _grade_run_name() -> str:
    return f"grade-{str(flow_run.parameters['task_id'])[:8]}"


@flow(name="grade-submission", flow_run_name=_grade_run_name)
async def grade_submission(task_id: UUID) -> State:
    """Grades one job: claims it, then load-submission, call-OpenAI, parse-score,
    persist-result. A job that is not pending (already taken, finished) is left alone."""
    settings = Settings.from_env()
    async with open_async_pool(settings, max_size=2) as pool, model_client(settings) as llm:
        job = await claim_task(pool, task_id, settings)
        if job is None:
            status = await fetch_task_status(pool, task_id)  # NotFoundError if there is none
            return Completed(message=f"task {task_id} was not pending ({status.status})")
        outcome = await grade_claimed_job(pool, llm, settings, job)
        if outcome == "completed":
            return Completed(message=f"task {task_id} completed")
        status = await fetch_task_status(pool, task_id)
        return Failed(message=f"task {task_id} {outcome}: {status.error_message or ''}".strip())


@flow(name="grade-pending")
async def grade_pending(limit: int = 100, concurrency: int = 10) -> dict[str, int]:
    """Grades up to `limit` pending jobs, `concurrency` at a time, oldest first. Claims as
    capacity frees up (SKIP LOCKED), so concurrent batch runs and on-demand runs never share a
    job, and no lease ticks while a job waits for a slot."""
    if limit < 1 or not 1 <= concurrency <= 1000:
        raise GraderError("limit must be at least 1 and concurrency between 1 and 1000")
    settings = Settings.from_env()
    outcomes = {"completed": 0, "failed": 0, "lost": 0}
    claimed = 0
    in_flight: set[asyncio.Task[str]] = set()
    async with (
        open_async_pool(settings, max_size=min(concurrency + 1, 20)) as pool,
        model_client(settings) as llm,
    ):
        while True:
            free = min(concurrency - len(in_flight), limit - claimed)
            if free > 0:
                for job in await claim_pending(pool, free, settings):
                    claimed += 1
                    in_flight.add(asyncio.create_task(grade_claimed_job(pool, llm, settings, job)))
            if not in_flight:
                break
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for done in finished:
                outcomes[done.result()] += 1
    return outcomes
