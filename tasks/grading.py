"""The Prefect tasks of one grade: load-submission, call-OpenAI, parse-score, persist-result,
and the status-sync tasks that claim jobs, mark them failed and reap expired leases.

Each task is small and safe to retry, with its retry policy in its decorator. Only failures that
can succeed on retry are retried (grader.model.failures.is_transient); the backoff is
exponential with jitter, and a 429's Retry-After is waited out before the backoff starts. The
model call's retry count and backoff are settings (GRADER_MODEL_RETRIES,
GRADER_RETRY_BACKOFF_SECONDS): a flow applies them when it starts, with
`call_openai_for(settings)`. Tasks take the run's context (pool, model client, settings) as an
argument, hence NO_CACHE: Prefect cannot hash it, and there is nothing to cache anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import openai
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.asyncio import rate_limit
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from grader.assessment import score_replies
from grader.context import RunContext
from grader.grading.essay import check_essay
from grader.grading.grade import Grade
from grader.grading.pricing import Prices
from grader.grading.scoring import ModelReply
from grader.model.client import request_grade
from grader.model.failures import is_transient, retry_after_seconds
from grader.settings import Settings
from grader.store import jobs
from grader.store.jobs import ClaimedJob, Submission

# The Prefect global concurrency limit (with slot decay) that rate-limits model calls;
# `grader up` creates it from GRADER_MODEL_RPM.
MODEL_RATE_LIMIT = "grader-model-calls"


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry what can succeed on retry, fail the rest at once."""
    exc = state.data
    return isinstance(exc, BaseException) and is_transient(exc)


# Long enough to ride out a database restart or failover (0.5 + 1 + 2 + 4 + 8 + 16 s).
_db_retries: dict[str, Any] = {
    "retries": 6,
    "retry_delay_seconds": exponential_backoff(backoff_factor=0.5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
    "cache_policy": NO_CACHE,
}


def _model_retries(retries: int, backoff_seconds: float) -> dict[str, Any]:
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=backoff_seconds),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_if_transient,
    }


@task(name="claim-task", **_db_retries)
async def claim_job(ctx: RunContext, task_id: UUID) -> ClaimedJob | None:
    return await jobs.claim_job(ctx.pool, task_id, ctx.settings)


@task(name="claim-pending", **_db_retries)
async def claim_pending(
    ctx: RunContext, limit: int, evaluation_run_id: UUID | None = None
) -> list[ClaimedJob]:
    return await jobs.claim_pending_jobs(
        ctx.pool, limit, ctx.settings, ctx.flow_run_id, evaluation_run_id
    )


@task(name="load-submission", **_db_retries)
async def load_submission(ctx: RunContext, job: ClaimedJob) -> Submission:
    submission = await jobs.load_submission(ctx.pool, job)
    check_essay(submission.essay, ctx.settings.max_essay_chars)  # InvalidEssayError: not retried
    return submission


# the defaults of GRADER_MODEL_RETRIES and GRADER_RETRY_BACKOFF_SECONDS
@task(name="call-openai", cache_policy=NO_CACHE, **_model_retries(4, 2.0))
async def call_openai(ctx: RunContext, submission: Submission) -> ModelReply:
    context = TaskRunContext.get()
    attempt = context.task_run.run_count if context else 1
    if ctx.settings.model_rpm:
        # the global requests-per-minute budget shared by every worker (a Prefect rate limit)
        await rate_limit(MODEL_RATE_LIMIT)
    try:
        return await request_grade(
            ctx.llm,
            ctx.settings.model,
            submission.rubric,
            submission.essay,
            attempt,
            ctx.settings.anchor_tokens,
        )
    except openai.RateLimitError as exc:
        # The provider said how long to wait: wait that long, then let the backoff add to it.
        await asyncio.sleep(retry_after_seconds(exc))
        raise


def call_openai_for(settings: Settings) -> Task:
    """call-OpenAI with the retry count and backoff of `settings`."""
    return call_openai.with_options(
        **_model_retries(settings.model_retries, settings.retry_backoff_seconds)
    )


@task(name="parse-score", cache_policy=NO_CACHE)
async def parse_score(
    replies: list[ModelReply],
    submission: Submission,
    prices: Prices,
    disagreement_points: int,
    review_rule: tuple[str, ...] = (),
) -> Grade:
    """`score_replies` (grader/assessment.py) as a task run of its own."""
    return score_replies(replies, submission, prices, disagreement_points, review_rule)


@task(name="persist-result", **_db_retries)
async def persist_result(ctx: RunContext, job: ClaimedJob, grade: Grade) -> UUID:
    return await jobs.complete_job(ctx.pool, job, grade)


@task(name="reap-expired-leases", **_db_retries)
async def reap_expired_leases(ctx: RunContext) -> dict[str, int]:
    return await jobs.reap_expired_leases(ctx.pool, ctx.settings.max_attempts)


@task(name="mark-failed", **_db_retries)
async def mark_failed(ctx: RunContext, job: ClaimedJob, reason: str) -> bool:
    return await jobs.fail_job(ctx.pool, job, reason)
