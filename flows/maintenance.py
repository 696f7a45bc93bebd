"""Maintenance flows with names and owners: the reaper returns the jobs of lost workers."""

from __future__ import annotations

from prefect import flow

from grader.context import open_run_context
from grader.settings import settings_for_run
from tasks.grading import reap_expired_leases


@flow(name="reap-stuck-tasks")
async def reap_stuck_tasks() -> dict[str, int]:
    """Processing jobs whose lease expired (their worker died or stalled) go back to pending
    while attempts remain (GRADER_MAX_ATTEMPTS), otherwise to failed with the reason."""
    async with open_run_context(settings_for_run(), 1, model=False) as ctx:
        return await reap_expired_leases(ctx)
