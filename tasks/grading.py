"""The Prefect tasks of one grade: load-submission, call-OpenAI, parse-score, persist-result,
and the status-sync tasks that claim jobs and mark them failed.

Each task is small and safe to retry, with its retry policy in its decorator. Only failures that
can succeed on retry are retried (grader.llm.is_transient); the backoff is exponential with
jitter, and a 429's Retry-After is waited out before the backoff starts. Tasks take the pool and
the model client as arguments, hence NO_CACHE: Prefect cannot hash them, and there is nothing to
cache anyway.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID

import openai
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.asyncio import rate_limit
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff
from psycopg_pool import AsyncConnectionPool

from grader import jobs
from grader.injection import detect_injection
from grader.jobs import ClaimedJob, Submission
from grader.llm import is_transient, request_grade, retry_after_seconds
from grader.models import ModelReply, ScoredGrade, check_essay, parse_reply
from grader.pricing import Prices, call_cost
from grader.settings import Settings

# Read when the worker starts: GRADER_MODEL_RETRIES, GRADER_RETRY_BACKOFF_SECONDS, GRADER_MODEL_RPM.
_POLICY = Settings.from_env()

# The Prefect global concurrency limit (with slot decay) that rate-limits model calls;
# `grader up` creates it from GRADER_MODEL_RPM.
MODEL_RATE_LIMIT = "grader-model-calls"


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry what can succeed on retry, fail the rest at once."""
    exc = state.data
    return isinstance(exc, BaseException) and is_transient(exc)


# Long enough to ride out a database restart or failover (0.5 + 1 + 2 + 4 + 8 + 16 s).
_db_retries = {
    "retries": 6,
    "retry_delay_seconds": exponential_backoff(backoff_factor=0.5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
    "cache_policy": NO_CACHE,
}


@task(name="claim-task", **_db_retries)
async def claim_task(
    pool: AsyncConnectionPool, task_id: UUID, settings: Settings
) -> ClaimedJob | None:
    return await jobs.claim_task(pool, task_id, settings)


@task(name="claim-pending", **_db_retries)
async def claim_pending(
    pool: AsyncConnectionPool, limit: int, settings: Settings
) -> list[ClaimedJob]:
    return await jobs.claim_pending_tasks(pool, limit, settings)


@task(name="load-submission", **_db_retries)
async def load_submission(
    pool: AsyncConnectionPool, job: ClaimedJob, max_essay_chars: int
) -> Submission:
    submission = await jobs.load_submission(pool, job)
    check_essay(submission.essay, max_essay_chars)  # InvalidEssayError: not retried
    return submission


@task(
    name="call-openai",
    retries=_POLICY.model_retries,
    retry_delay_seconds=exponential_backoff(backoff_factor=_POLICY.retry_backoff_seconds),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
)
async def call_openai(client: openai.AsyncOpenAI, model: str, submission: Submission) -> ModelReply:
    context = TaskRunContext.get()
    attempt = context.task_run.run_count if context else 1
    if _POLICY.model_rpm:
        # the global requests-per-minute budget shared by every worker (a Prefect rate limit)
        await rate_limit(MODEL_RATE_LIMIT)
    try:
        return await request_grade(client, model, submission.rubric, submission.essay, attempt)
    except openai.RateLimitError as exc:
        # The provider said how long to wait: wait that long, then let the backoff add to it.
        await asyncio.sleep(retry_after_seconds(exc))
        raise


@task(name="parse-score", cache_policy=NO_CACHE)
async def parse_score(reply: ModelReply, submission: Submission, prices: Prices) -> ScoredGrade:
    """The model's answer checked against the rubric, priced, and with the essay's signs of a
    prompt injection (for human review: the rubric's bounds hold whatever the model said)."""
    grade = parse_reply(reply, submission.rubric)
    return replace(
        grade,
        cost_usd=call_cost(grade.model, grade.prompt_tokens, grade.completion_tokens, prices),
        injection_signals=detect_injection(submission.essay),
    )


@task(name="persist-result", **_db_retries)
async def persist_result(pool: AsyncConnectionPool, job: ClaimedJob, grade: ScoredGrade) -> UUID:
    return await jobs.complete_task(pool, job, grade)


@task(name="reap-expired-leases", **_db_retries)
async def reap_expired_leases(pool: AsyncConnectionPool, max_attempts: int) -> dict[str, int]:
    return await jobs.reap_expired_leases(pool, max_attempts)


@task(name="mark-failed", **_db_retries)
async def mark_failed(pool: AsyncConnectionPool, job: ClaimedJob, reason: str) -> bool:
    return await jobs.fail_task(pool, job, reason)
