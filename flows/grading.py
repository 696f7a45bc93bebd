"""The grading flows: one job on demand (`grade_submission`) and pending work in bulk
(`grade_pending`). Both claim jobs in the database first (pending -> processing, with a lease),
then run the same four tasks per job; the database, not Prefect's queue, makes a job durable.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID

import openai
import psycopg
from prefect import flow
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from psycopg_pool import AsyncConnectionPool

from grader import jobs
from grader.db import open_async_pool
from grader.errors import GraderError, LeaseLostError
from grader.jobs import ClaimedJob, fetch_task_status
from grader.llm import describe_failure, model_client
from grader.models import JobStatus
from grader.pricing import load_prices
from grader.settings import Settings
from tasks.grading import (
    call_openai,
    claim_pending,
    claim_task,
    load_submission,
    mark_failed,
    parse_score,
    persist_result,
    reap_expired_leases,
)


async def _run_steps(
    pool: AsyncConnectionPool, llm: openai.AsyncOpenAI, settings: Settings, job: ClaimedJob
) -> str:
    prices = load_prices(settings.prices_file)
    try:
        submission = await load_submission(pool, job, settings.max_essay_chars)
        await _pause_point("load-submission", settings)
        reply = await call_openai(llm, settings.model, submission)
        await _pause_point("call-openai", settings)
        grade = await parse_score(reply, submission, prices)
        await _pause_point("parse-score", settings)
        await persist_result(pool, job, grade)
        return "completed"
    except LeaseLostError:
        return "lost"
    except Exception as exc:
        owned = await mark_failed(pool, job, describe_failure(exc))
        return "failed" if owned else "lost"


async def _pause_point(step: str, settings: Settings) -> None:
    """Fault injection for the crash tests (GRADER_TEST_PAUSE_AFTER=step:seconds): hold the
    job after a step so that a test can kill the worker exactly at that boundary."""
    if settings.test_pause_after and settings.test_pause_after[0] == step:
        await asyncio.sleep(settings.test_pause_after[1])


async def _keep_lease(
    pool: AsyncConnectionPool, job: ClaimedJob, settings: Settings, work: asyncio.Task[str]
) -> None:
    """The heartbeat: renews the lease while the job runs, so a slow but live model call is
    never taken away; stops the work as soon as the job is no longer ours (cancelled, or
    reaped after a stall)."""
    while True:
        await asyncio.sleep(settings.heartbeat_seconds)
        try:
            owned = await jobs.renew_lease(pool, job, settings.lease_seconds)
        except psycopg.OperationalError:
            continue  # the database is away for a moment; the lease has room for missed beats
        if not owned:
            work.cancel()
            return


async def grade_claimed_job(
    pool: AsyncConnectionPool, llm: openai.AsyncOpenAI, settings: Settings, job: ClaimedJob
) -> str:
    """Runs the four tasks for a job this worker owns, under a renewed lease; returns how the
    job ended: completed, failed, or lost (cancelled or taken over meanwhile)."""
    work = asyncio.create_task(_run_steps(pool, llm, settings, job))
    heartbeat = asyncio.create_task(_keep_lease(pool, job, settings, work))
    try:
        return await work
    except asyncio.CancelledError:
        if work.cancelled() and not heartbeat.done():
            raise  # we were cancelled from outside, not by the heartbeat
        return "lost"
    finally:
        heartbeat.cancel()


def _worker_id(settings: Settings, run_id: object) -> Settings:
    """This flow run's identity in the job table: process plus run, so that two flow runs in
    one process never release each other's jobs."""
    return replace(settings, worker_id=f"{settings.worker_id}:{str(run_id)[:8]}")


async def _release_on_crash(flow, run, state) -> None:
    """on_crashed: the run is dying and Prefect knows it; hand its jobs back now rather than
    when their leases expire."""
    settings = _worker_id(Settings.from_env(), run.id)
    task_id = run.parameters.get("task_id")
    async with open_async_pool(settings, max_size=1) as pool:
        await jobs.release_worker_tasks(
            pool,
            settings,
            f"flow run {run.name} crashed: {(state.message or '')[:200]}",
            UUID(str(task_id)) if task_id else None,
        )


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
        *(f"| {c['name']} | {c['score']}/{c['max_points']} |" for c in grade.criteria),
        "",
        f"- queue wait: {(status.started_at - status.created_at).total_seconds():.2f}s",
        f"- grading: {(status.completed_at - status.started_at).total_seconds():.2f}s",
        f"- model: {grade.model}, {grade.model_attempts} call(s), "
        f"{grade.prompt_tokens} + {grade.completion_tokens} tokens",
    ]
    return "\n".join(lines)


def _grade_run_name() -> str:
    return f"grade-{str(flow_run.parameters['task_id'])[:8]}"


@flow(name="grade-submission", flow_run_name=_grade_run_name, on_crashed=[_release_on_crash])
async def grade_submission(task_id: UUID) -> State:
    """Grades one job: claims it, then load-submission, call-OpenAI, parse-score,
    persist-result. A job that is not pending (already taken, finished) is left alone."""
    settings = _worker_id(Settings.from_env(), flow_run.id)
    load_prices(settings.prices_file)  # a bad price table stops the run before it claims a job
    async with open_async_pool(settings, max_size=2) as pool, model_client(settings) as llm:
        job = await claim_task(pool, task_id, settings)
        if job is None:
            status = await fetch_task_status(pool, task_id)  # NotFoundError if there is none
            if status.paused_reason:  # a spending cap: the job waits for grade-pending
                return Completed(message=f"task {task_id} left pending: {status.paused_reason}")
            return Completed(message=f"task {task_id} was not pending ({status.status})")
        outcome = await grade_claimed_job(pool, llm, settings, job)
        status = await fetch_task_status(pool, task_id)
    if outcome == "completed":
        await acreate_markdown_artifact(
            key=f"grade-{str(task_id)[:8]}",
            markdown=_grade_summary(status),
            description="Scores and timings of one grading job (no essay text)",
        )
        return Completed(message=f"task {task_id} completed")
    return Failed(message=f"task {task_id} {outcome}: {status.error_message or ''}".strip())


@flow(name="grade-pending", on_crashed=[_release_on_crash])
async def grade_pending(limit: int = 100, concurrency: int = 10) -> dict[str, int]:
    """Grades up to `limit` pending jobs, `concurrency` at a time, oldest first. Claims as
    capacity frees up (SKIP LOCKED), so concurrent batch runs and on-demand runs never share a
    job, and no lease ticks while a job waits for a slot."""
    if limit < 1 or not 1 <= concurrency <= 1000:
        raise GraderError("limit must be at least 1 and concurrency between 1 and 1000")
    settings = _worker_id(Settings.from_env(), flow_run.id)
    load_prices(settings.prices_file)  # a bad price table stops the run before it claims a job
    outcomes = {"completed": 0, "failed": 0, "lost": 0}
    claimed = 0
    in_flight: set[asyncio.Task[str]] = set()
    async with (
        open_async_pool(settings, max_size=min(concurrency + 1, 20)) as pool,
        model_client(settings) as llm,
    ):
        await reap_expired_leases(pool, settings.max_attempts)
        # Claim in micro-batches: a claim is a task run (an API round trip or two), so wait
        # until a quarter of the slots (at most 10) are free rather than claiming job by job.
        batch = max(1, min(concurrency // 4, 10))
        while True:
            free = min(concurrency - len(in_flight), limit - claimed)
            if free > 0 and (free >= min(batch, limit - claimed) or not in_flight):
                for job in await claim_pending(pool, free, settings):
                    claimed += 1
                    in_flight.add(asyncio.create_task(grade_claimed_job(pool, llm, settings, job)))
            if not in_flight:
                break
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for done in finished:
                outcomes[done.result()] += 1
    await acreate_table_artifact(
        key="grade-pending-batch",
        table=[{"outcome": name, "jobs": count} for name, count in outcomes.items()],
        description=f"Jobs graded by one grade-pending run (limit {limit}, concurrency "
        f"{concurrency})",
    )
    return outcomes
