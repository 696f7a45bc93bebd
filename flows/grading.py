"""The grading flows: one job on demand (`grade_submission`) and pending work in bulk
(`grade_pending`). Both claim jobs in the database first (pending -> processing, with a lease),
then run the same four tasks per job; the database, not Prefect's queue, makes a job durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from uuid import UUID

import psycopg
from prefect import Task, flow
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from grader.context import RunContext, open_run_context
from grader.errors import GraderError, LeaseLostError
from grader.grading.grade import Grade
from grader.grading.pricing import call_cost
from grader.grading.scoring import parse_reply
from grader.handoff import grade_run_name
from grader.jobs import JobStatus
from grader.model.failures import describe_failure
from grader.quality import recheck
from grader.review import add_reasons
from grader.settings import settings_for_run
from grader.store.jobs import (
    ClaimedJob,
    Submission,
    fetch_job_status,
    release_worker_jobs,
    renew_lease,
)
from grader.store.listeners import listening_for_pending, other_listener_alive
from tasks.grading import (
    call_openai_for,
    claim_job,
    claim_pending,
    load_submission,
    mark_failed,
    parse_score,
    persist_result,
    reap_expired_leases,
)


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


async def recheck_grade(
    ctx: RunContext, call_openai: Task, submission: Submission, grade: Grade
) -> Grade:
    """The checks of grader/quality/recheck.py (GRADER_RECHECK): the justification check, and for a
    suspect grade one more call-OpenAI task run on the essay with the passages that might
    address the grader set aside. They add reasons for review; the scores stay the first
    grading's, and persist-result stores the grade once, as ever."""
    if ctx.settings.recheck == "off":
        return grade
    neutral = recheck.neutralise(submission.essay)
    reasons = [recheck.justification_reason(grade, neutral)]
    if neutral.passages and recheck.is_suspect(grade, ctx.settings):
        try:
            reply = await call_openai(ctx, replace(submission, essay=neutral.text))
            again = parse_reply(reply, submission.rubric)
        except Exception as exc:  # a failed check sends the grade to a person, not to failure
            reasons.append(recheck.failed_reason(describe_failure(exc), neutral))
        else:
            cost = call_cost(again.model, again.prompt_tokens, again.completion_tokens, ctx.prices)
            grade = recheck.with_regrade_cost(grade, replace(again, cost_usd=cost))
            reasons.append(recheck.regrade_reason(grade, again, neutral, ctx.settings))
    return add_reasons(grade, [r for r in reasons if r is not None])


async def pause_point(step: str, ctx: RunContext) -> None:
    """The one test hook (GRADER_TEST_PAUSE_AFTER=step:seconds): hold the job after a step so
    that a crash test can kill the worker exactly at that boundary. Unset, it does nothing."""
    pause = ctx.settings.test_pause_after
    if pause and pause[0] == step:
        await asyncio.sleep(pause[1])


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


async def release_on_crash(flow, run, state) -> None:
    """on_crashed: the run is dying and Prefect knows it; hand its jobs back now rather than
    when their leases expire."""
    task_id = run.parameters.get("task_id")
    async with open_run_context(settings_for_run(), 1, run.id, model=False) as ctx:
        await release_worker_jobs(
            ctx.pool,
            ctx.settings,
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
