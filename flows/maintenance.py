"""Maintenance flows with names and owners: the reaper returns the jobs of lost workers; the
regrade queues new jobs for what an older version of a rubric graded."""

from __future__ import annotations

from prefect import flow

from grader.context import open_run_context
from grader.export import parse_since
from grader.settings import settings_for_run
from grader.store import review
from grader.store.connections import connect
from tasks.grading import reap_expired_leases


@flow(name="reap-stuck-jobs")
async def reap_stuck_jobs() -> dict[str, int]:
    """Processing jobs whose lease expired (their worker died or stalled) go back to pending
    while attempts remain (GRADER_MAX_ATTEMPTS), otherwise to failed with the reason."""
    async with open_run_context(settings_for_run(), 1, model=False) as ctx:
        return await reap_expired_leases(ctx)


@flow(name="regrade")
def regrade(
    rubric: str, since: str | None = None, only_auto: bool = False, include_reviewed: bool = False
) -> dict:
    """Queues regrading by the newest version of the rubric named `rubric` (see
    `grader regrade`); the jobs are graded like any other (a listener, grade-pending)."""
    with connect(settings_for_run()) as conn:
        return review.regrade(
            conn,
            rubric,
            since=parse_since(since, "since"),
            only_auto=only_auto,
            include_reviewed=include_reviewed,
        )
