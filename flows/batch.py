"""Batch grading at half the price: pending jobs go to the provider's Batch API, and a later run
collects what it answered. Each run of `grade-pending-batch` first collects (or recovers) the
batches it left open, then sends one new batch; it never waits for the provider, so no worker
is held for hours.

Exactly once: the intent (a `provider_batches` row) and the jobs it holds are written before
anything is sent; the provider batch carries our reference in its metadata; a run that finds an
intent without a provider id looks for a provider batch with that reference before creating
one. A result is stored only for the job attempt whose custom_id it carries, through the same
checks (parse-score) and the same one-transaction write (persist-result) as every grade. One
run at a time: a run holds an advisory lock for its whole length (released by PostgreSQL when
its process dies), so two runs can never both send a batch for the same intent.

Each batch has an artifact in the Prefect UI (`provider-batch-<ref>`, a new version at each
look): its jobs, the provider's status and counts, and what became of the jobs; never essays.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from typing import Any
from uuid import UUID

import openai
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from grader.assessment import score_replies
from grader.context import RunContext, open_run_context, pause_point
from grader.errors import GraderError, LeaseLostError
from grader.grading.essay import check_essay
from grader.model.request import CHAT_COMPLETIONS, GradingRequest, batch_line
from grader.settings import settings_for_run
from grader.store import provider_batches, spending
from grader.store.connections import connect
from grader.store.jobs import (
    ClaimedJob,
    Submission,
    complete_job,
    fail_job,
    load_submissions,
    release_worker_jobs,
)
from tasks.grading import call_openai_for
from tasks.recheck import recheck_grade

METADATA_KEY = "grader_batch_ref"
FINAL = ("completed", "expired", "failed", "cancelled")
RETRYABLE = {"429", "500", "502", "503", "504", "batch_expired", "server_error"}


def _request(
    requests: dict[UUID, GradingRequest], ctx: RunContext, submission: Submission
) -> GradingRequest:
    """The grading request of the submission's rubric: built once per rubric in a batch, the
    same a synchronous grading sends."""
    if submission.rubric_id not in requests:
        requests[submission.rubric_id] = GradingRequest.of(
            submission.rubric, ctx.settings.model, ctx.settings.anchor_tokens
        )
    return requests[submission.rubric_id]


@task(name="submit-batch", cache_policy=NO_CACHE)
async def submit_batch(ctx: RunContext, ref: UUID, jobs: list[ClaimedJob]) -> str:
    """load-submission and call-OpenAI at batch granularity: the JSONL of the batch's jobs,
    uploaded, and the provider batch created with our reference (unless one exists)."""
    async for existing in ctx.llm.batches.list(limit=100):
        if (existing.metadata or {}).get(METADATA_KEY) == str(ref):
            return existing.id  # created before a crash: never a second, paid batch
    filename = f"{ref}.jsonl"
    async for uploaded in ctx.llm.files.list(purpose="batch"):
        if uploaded.filename == filename:  # uploaded before a crash: not sent twice
            upload = uploaded
            break
    else:
        lines = []
        submissions = await load_submissions(ctx.pool, jobs)  # one query for the batch
        requests: dict[UUID, GradingRequest] = {}
        for job in jobs:
            submission = submissions.get(job.task_id)
            if submission is None:  # cancelled meanwhile: not sent
                continue
            try:
                check_essay(submission.essay, ctx.settings.max_essay_chars)
            except GraderError as exc:  # this job fails; the batch goes without it
                await fail_job(ctx.pool, job, str(exc)[:300])
                continue
            body = _request(requests, ctx, submission).body(submission.essay)
            lines.append(batch_line(provider_batches.custom_id(job), body))
        upload = await ctx.llm.files.create(
            file=(filename, io.BytesIO("\n".join(lines).encode())), purpose="batch"
        )
    await pause_point("batch-upload", ctx)
    created = await ctx.llm.batches.create(
        input_file_id=upload.id,
        endpoint=CHAT_COMPLETIONS,
        completion_window="24h",
        metadata={METADATA_KEY: str(ref)},
    )
    return created.id


@task(name="collect-batch", cache_policy=NO_CACHE)
async def collect_batch(ctx: RunContext, ref: UUID, provider_batch_id: str) -> dict[str, Any]:
    """parse-score and persist-result for every line of a finished batch; the batch's jobs that
    got no usable answer go back to pending (a retryable error, an answer that does not fit
    the rubric, a malformed line, expiry, cancellation; failed once GRADER_MAX_ATTEMPTS are
    spent) or fail (a request the provider refused). Only the provider's status and counts
    while it is still working."""
    batch = await ctx.llm.batches.retrieve(provider_batch_id)
    progress = batch.request_counts
    provider = {
        "status": batch.status,
        "provider_done": progress.completed if progress else 0,
        "provider_failed": progress.failed if progress else 0,
    }
    if batch.status not in FINAL:
        return provider
    with connect(ctx.settings) as conn:
        held = {provider_batches.custom_id(j): j for j in provider_batches.jobs(conn, ref)}
    call_openai = call_openai_for(ctx.settings)
    counts = {**provider, "completed": 0, "failed": 0, "requeued": 0, "stale": 0, "malformed": 0}
    holder = replace(ctx.settings, worker_id=f"batch:{ref}")
    requests: dict[UUID, GradingRequest] = {}
    records = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            text = (await ctx.llm.files.content(file_id)).text
            for line in filter(str.strip, text.splitlines()):
                try:
                    records.append(json.loads(line))
                except ValueError:  # its job, unanswered, goes back with the rest below
                    counts["malformed"] += 1
    submissions = await load_submissions(ctx.pool, list(held.values()))
    for record in records:
        job = held.pop(record.get("custom_id"), None) if isinstance(record, dict) else None
        if job is None:  # cancelled, or graded by another path meanwhile: dropped
            counts["stale"] += 1
            continue
        response = record.get("response") or {}
        error = record.get("error")
        code = str((error or {}).get("code") or response.get("status_code") or "")
        try:
            if error or response.get("status_code") != 200:
                if code in RETRYABLE:  # to the next batch, or to be graded now
                    synchronous = ctx.settings.batch_retry == "synchronous"
                    await release_worker_jobs(
                        ctx.pool,
                        holder,
                        f"batch line error {code}: sent back",
                        job.task_id,
                        "now" if synchronous else None,
                    )
                    counts["requeued"] += 1
                else:
                    await fail_job(ctx.pool, job, f"model API error {code} in a batch")
                    counts["failed"] += 1
                continue
            submission = submissions.get(job.task_id)
            if submission is None:
                raise LeaseLostError(f"task {job.task_id} is no longer held by the batch")
            reply = _request(requests, ctx, submission).reply(response.get("body") or {})
            grade = score_replies(
                [reply],
                submission,
                ctx.prices,
                ctx.settings.disagreement_points,
                ctx.settings.review_rule,
                batch=True,
            )
            # the same checks as a synchronous grade: a suspect one is graded again, at once
            grade = await recheck_grade(ctx, call_openai, submission, grade)
            await complete_job(ctx.pool, job, grade)
            counts["completed"] += 1
            if counts["completed"] == 1:
                await pause_point("batch-store", ctx)
        except LeaseLostError:
            counts["stale"] += 1
        except GraderError as exc:  # an answer that does not fit the rubric: asked again
            await release_worker_jobs(
                ctx.pool, holder, f"the batch's answer did not fit: {str(exc)[:300]}", job.task_id
            )
            counts["requeued"] += 1
    for job in held.values():  # no line at all: an expired, failed or cancelled batch
        await release_worker_jobs(
            ctx.pool, holder, f"batch {batch.status} without an answer: sent back", job.task_id
        )
        counts["requeued"] += 1
    with connect(ctx.settings) as conn:
        provider_batches.collected(conn, ref, counts)
    if counts["stale"]:  # task ids and counts only: never an essay
        get_run_logger().info(
            "batch %s: %d answer(s) dropped, their jobs cancelled or graded another way",
            provider_batch_id,
            counts["stale"],
        )
    # the essays leave the provider with the batch: input, output and error files deleted
    for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
        if file_id:
            with contextlib.suppress(openai.NotFoundError):
                await ctx.llm.files.delete(file_id)
    return counts


async def _publish(ref: UUID, provider_batch_id: str, jobs: int, counts: dict[str, Any]) -> None:
    """The batch's artifact: where it stands, in counts (a new version at each look)."""
    await acreate_table_artifact(
        key=f"provider-batch-{str(ref)[:8]}",
        table=[{"jobs": jobs, "provider batch": provider_batch_id, **counts}],
        description=f"Batch {ref} at the provider: its status, how many of its {jobs} requests "
        "the provider has done, and what became of the jobs once collected.",
    )


@flow(name="grade-pending-batch")
async def grade_pending_batch(limit: int = 1000) -> dict[str, Any]:
    """Collects the batches earlier runs sent (or finishes sending one a crash interrupted),
    then sends up to `limit` pending jobs as one new batch. Run it on a schedule."""
    if not 1 <= limit <= 50_000:
        raise GraderError("limit must be between 1 and 50,000 (the provider's batch size)")
    settings = settings_for_run()
    summary: dict[str, Any] = {"collected": [], "sent": None}
    with connect(settings) as lock:
        if not provider_batches.lock_runs(lock):
            return {**summary, "skipped": "another grade-pending-batch run is active"}
        async with open_run_context(settings, 4, flow_run.id) as ctx:
            with connect(settings) as conn:
                open_batches = provider_batches.open_batches(conn)
            for row in open_batches:
                ref, provider_id = row["batch_ref"], row["provider_batch_id"]
                if provider_id is None:  # a crash before the batch id was stored
                    with connect(settings) as conn:
                        held = provider_batches.jobs(conn, ref)
                        if not held:  # its jobs were all cancelled meanwhile
                            provider_batches.collected(
                                conn, ref, {"status": "nothing left to send"}
                            )
                            continue
                    provider_id = await _send(ctx, ref, held)
                result = await collect_batch(ctx, ref, provider_id)
                await _publish(ref, provider_id, row["jobs"], result)
                summary["collected"].append({"batch": provider_id, **result})
            with connect(settings) as conn:
                allowed = spending.batch_allowance(conn, ctx.prices)
                ref, jobs = provider_batches.claim(
                    conn, limit if allowed is None else min(limit, allowed), settings.model
                )
            if ref is not None:
                await pause_point("batch-intent", ctx)
                provider_id = await _send(ctx, ref, jobs)
                await _publish(ref, provider_id, len(jobs), {"status": "sent"})
                summary["sent"] = {"batch": provider_id, "jobs": len(jobs)}
    return summary


async def _send(ctx: RunContext, ref: UUID, jobs: list[ClaimedJob]) -> str:
    """Sends the intent's jobs and stores the provider's batch id."""
    provider_id = await submit_batch(ctx, ref, jobs)
    await pause_point("batch-create", ctx)
    with connect(ctx.settings) as conn:
        provider_batches.submitted(conn, ref, provider_id)
    return provider_id
