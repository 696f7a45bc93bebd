"""Grading the jobs a run has claimed: the four tasks of a grade (and the recheck) for each job
under a renewed lease, jobs claimed as slots free up, and a crashed run's jobs handed back. The
grading flows and evaluate-agreement share these steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

import psycopg
from prefect import Task

from grader.context import RunContext, open_run_context, pause_point
from grader.errors import LeaseLostError
from grader.model.failures import describe_failure
from grader.settings import settings_for_run
from grader.store.jobs import ClaimedJob, release_worker_jobs, renew_lease
from tasks.grading import (
    call_openai_for,
    claim_pending,
    load_submission,
    mark_failed,
    parse_score,
    persist_result,
)
from tasks.recheck import recheck_grade


async def _run_steps(ctx: RunContext, call_openai: Task, job: ClaimedJob) -> str:
    try:
        submission = await load_submission(ctx, job)
        await pause_point("load-submission", ctx)
        samples = job.samples or ctx.settings.samples
        # K gradings at once, each its own call-OpenAI task run with its own retries
        replies = await asyncio.gather(*(call_openai(ctx, submission) for _ in range(samples)))
        await pause_point("call-openai", ctx)
        grade = await parse_score(
            list(replies),
            submission,
            ctx.prices,
            ctx.settings.disagreement_points,
            ctx.settings.review_rule,
        )
        grade = await recheck_grade(ctx, call_openai, submission, grade)
        await pause_point("parse-score", ctx)
        await persist_result(ctx, job, grade)
        return "completed"
    except LeaseLostError:
        return "lost"
    except Exception as exc:
        owned = await mark_failed(ctx, job, describe_failure(exc))
        return "failed" if owned else "lost"


async def _keep_lease(ctx: RunContext, job: ClaimedJob, work: asyncio.Task[str]) -> None:
    """The heartbeat: renews the lease while the job runs, so a slow but live model call is
    never taken away; stops the work as soon as the job is no longer ours (cancelled, or
    reaped after a stall)."""
    while True:
        await asyncio.sleep(ctx.settings.heartbeat_seconds)
        try:
            owned = await renew_lease(ctx.pool, job, ctx.settings.lease_seconds)
        except psycopg.OperationalError:
            continue  # the database is away for a moment; the lease has room for missed beats
        if not owned:
            work.cancel()
            return


async def grade_claimed_job(ctx: RunContext, call_openai: Task, job: ClaimedJob) -> str:
    """Runs the four tasks for a job this worker owns, under a renewed lease; returns how the
    job ended: completed, failed, or lost (cancelled or taken over meanwhile)."""
    work = asyncio.create_task(_run_steps(ctx, call_openai, job))
    heartbeat = asyncio.create_task(_keep_lease(ctx, job, work))
    try:
        return await work
    except asyncio.CancelledError:
        if work.cancelled() and not heartbeat.done():
            raise  # we were cancelled from outside, not by the heartbeat
        return "lost"
    finally:
        heartbeat.cancel()


async def grade_as_claimed(
    ctx: RunContext,
    concurrency: int,
    limit: int,
    batch: int,
    more_work: Callable[[], Awaitable[bool]] | None = None,
    evaluation_run_id: UUID | None = None,
) -> dict[str, int]:
    """Claims pending jobs as slots free up (SKIP LOCKED: concurrent runs never share a job, and
    no lease ticks while a job waits for a slot) and grades each as it is claimed; at most
    `limit` jobs, claimed `batch` at a time at the least (unless nothing is in flight). When
    nothing is pending, returns; or, with `more_work`, waits on it while slots are free (a
    notification, a finished job, or its timeout) and returns once it says False. With
    `evaluation_run_id`, claims only that evaluation run's jobs."""
    call_openai = call_openai_for(ctx.settings)
    outcomes = {"completed": 0, "failed": 0, "lost": 0}
    claimed = 0
    in_flight: set[asyncio.Task[str]] = set()
    listening = more_work is not None
    while True:
        free = min(concurrency - len(in_flight), limit - claimed)
        if free > 0 and (free >= min(batch, limit - claimed) or not in_flight):
            for job in await claim_pending(ctx, free, evaluation_run_id):
                claimed += 1
                in_flight.add(asyncio.create_task(grade_claimed_job(ctx, call_openai, job)))
        waiters: set[asyncio.Future] = set(in_flight)
        more = None
        if listening and len(in_flight) < concurrency and claimed < limit:
            more = asyncio.ensure_future(more_work())
            waiters.add(more)
        if not waiters:
            break
        finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if more is not None and more not in finished:
            more.cancel()
            await asyncio.gather(more, return_exceptions=True)
        elif more is not None and not more.result():
            listening = False  # its time is up: finish what is in flight, claim nothing more
            limit = claimed
        for done in finished & in_flight:
            outcomes[done.result()] += 1
        in_flight -= finished
    return outcomes


async def release_on_crash(flow, flow_run, state) -> None:
    """on_crashed: the run is dying and Prefect knows it; hand its jobs back now rather than
    when their leases expire. Prefect's flow engine calls a hook with positional arguments, a
    worker's runner (when the run's process dies) with keywords: the names must be Prefect's."""
    task_id = flow_run.parameters.get("task_id")
    async with open_run_context(settings_for_run(), 1, flow_run.id, model=False) as ctx:
        await release_worker_jobs(
            ctx.pool,
            ctx.settings,
            f"flow run {flow_run.name} crashed: {(state.message or '')[:200]}",
            UUID(str(task_id)) if task_id else None,
        )
