"""The grading flows: one job on demand (`grade_submission`) and pending work in bulk
(`grade_pending`). Both claim jobs in the database first (pending -> processing, with a lease),
then run the same four tasks per job (tasks/grade_claimed.py); the database, not Prefect's
queue, makes a job durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from uuid import UUID

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from grader.context import open_run_context
from grader.errors import GraderError
from grader.handoff import grade_run_name
from grader.jobs import JobStatus
from grader.settings import settings_for_run
from grader.store.jobs import fetch_job_status
from grader.store.listeners import listening_for_pending, other_listener_alive
from tasks.grade_claimed import grade_as_claimed, grade_claimed_job, release_on_crash
from tasks.grading import call_openai_for, claim_job, reap_expired_leases


def _grade_summary(status: JobStatus) -> str:
    """The artifact of a completed run: scores and timings, never the essay or student."""
    grade = status.grade
    lines = [
        f"### Task {status.task_id}",
        f"**{grade.total_score}/{grade.max_score}**"
        + (" (SIMULATED: not a real grade)" if grade.simulated else ""),
        "",
        "| criterion | score |",
        "|---|---|",
        *(f"| {c.name} | {c.score}/{c.max_points} |" for c in grade.criteria),
        "",
        f"- queue wait: {(status.started_at - status.created_at).total_seconds():.2f}s",
        f"- grading: {(status.completed_at - status.started_at).total_seconds():.2f}s",
        f"- model: {grade.model}, {grade.model_attempts} call(s), "
        f"{grade.prompt_tokens} + {grade.completion_tokens} tokens",
    ]
    return "\n".join(lines)


def _score_line(status: JobStatus) -> str:
    grade = status.grade
    return f"{grade.total_score}/{grade.max_score}" + (" (SIMULATED)" if grade.simulated else "")


def _grade_run_name() -> str:
    return grade_run_name(flow_run.parameters["task_id"])


@flow(name="grade-submission", flow_run_name=_grade_run_name, on_crashed=[release_on_crash])
async def grade_submission(task_id: UUID) -> State:
    """Grades one job: claims it, then load-submission, call-OpenAI, parse-score,
    persist-result. A job that is not pending (already taken, finished) is left alone."""
    settings = settings_for_run()
    async with open_run_context(settings, 2, flow_run.id) as ctx:
        job = await claim_job(ctx, task_id)
        if job is None:
            status = await fetch_job_status(ctx.pool, task_id)  # NotFoundError if none
            if status.paused_reason:  # a spending cap: the job waits for grade-pending
                return Completed(message=f"task {task_id} left pending: {status.paused_reason}")
            return Completed(message=f"task {task_id} was not pending ({status.status})")
        outcome = await grade_claimed_job(ctx, call_openai_for(settings), job)
        status = await fetch_job_status(ctx.pool, task_id)
    if outcome == "completed":
        score = _score_line(status)
        await acreate_markdown_artifact(
            key=f"grade-{str(task_id)[:8]}",
            markdown=_grade_summary(status),
            description=f"Grade {score}",
        )
        return Completed(message=f"graded {score}")
    return Failed(message=f"task {task_id} {outcome}: {status.error_message or ''}".strip())


@flow(name="grade-pending", on_crashed=[release_on_crash])
async def grade_pending(limit: int = 100, concurrency: int = 10) -> dict[str, int]:
    """Grades up to `limit` pending jobs, `concurrency` at a time, oldest first, then ends."""
    if limit < 1 or not 1 <= concurrency <= 1000:
        raise GraderError("limit must be at least 1 and concurrency between 1 and 1000")
    settings = settings_for_run()
    async with open_run_context(settings, min(concurrency + 1, 20), flow_run.id) as ctx:
        await reap_expired_leases(ctx)
        # Claim in micro-batches: a claim is a task run (an API round trip or two), so wait
        # until a quarter of the slots (at most 10) are free rather than claiming job by job.
        batch = max(1, min(concurrency // 4, 10))
        outcomes = await grade_as_claimed(ctx, concurrency, limit, batch)
    await acreate_table_artifact(
        key="grade-pending-batch",
        table=[{"outcome": name, "jobs": count} for name, count in outcomes.items()],
        description=f"Jobs graded by one grade-pending run (limit {limit}, concurrency "
        f"{concurrency})",
    )
    return outcomes


# A missed notification (a listening connection that blinked) costs at most this long.
ARRIVAL_POLL_SECONDS = 5.0


def _next_boundary(minutes: float, now: float) -> float:
    """The end of the current `minutes`-long period of the wall clock: a listener ends there,
    as its schedule starts the next, so that listeners follow each other without drifting."""
    period = minutes * 60
    return (now // period + 1) * period


@flow(name="grade-on-arrival", on_crashed=[release_on_crash])
async def grade_on_arrival(
    concurrency: int = 20, minutes: float = 10.0, handover_seconds: float = 120.0
) -> dict[str, int]:
    """Grades each job the moment it becomes pending, `concurrency` at a time: listens for the
    trigger's notification (PostgreSQL LISTEN/NOTIFY) and claims at once, with the same four
    tasks per job as every grade. Runs until the end of the current `minutes`-long period of
    the clock, when its schedule starts the next listener, and on until that one listens (at
    most `handover_seconds` more), so that no job waits between the two; while it listens,
    triggers hand nothing to Prefect (grader.listeners shows it is alive)."""
    if not 1 <= concurrency <= 1000 or minutes <= 0:
        raise GraderError("concurrency must be between 1 and 1000 and minutes more than 0")
    settings = settings_for_run()
    deadline = _next_boundary(minutes, time.time())
    async with (
        open_run_context(settings, min(concurrency + 1, 20), flow_run.id) as ctx,
        listening_for_pending(ctx.settings, ctx.settings.worker_id, ctx.flow_run_id) as heard,
    ):
        await reap_expired_leases(ctx)

        async def more_work() -> bool:
            now = time.time()
            if now >= deadline + handover_seconds or (
                now >= deadline and await other_listener_alive(ctx.pool, ctx.settings.worker_id)
            ):
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), ARRIVAL_POLL_SECONDS)
            heard.clear()
            return True

        outcomes = await grade_as_claimed(ctx, concurrency, sys.maxsize, 1, more_work)
    await acreate_table_artifact(
        key="grade-on-arrival",
        table=[{"outcome": name, "jobs": count} for name, count in outcomes.items()],
        description=f"Jobs graded on arrival by one listener ({minutes:g} minutes)",
    )
    return outcomes
