"""Maintenance flows with names and owners: the reaper returns the jobs of lost workers."""

from __future__ import annotations

from prefect import flow

from grader.db import open_async_pool
from grader.settings import Settings
from tasks.grading import reap_expired_leases


@flow(name="reap-stuck-tasks")
async def reap_stuck_tasks() -> dict[str, int]:
    """Processing jobs whose lease expired (their worker died or stalled) go back to pending
    while attempts remain (GRADER_MAX_ATTEMPTS), otherwise to failed with the reason."""
    settings = Settings.from_env()
    async with open_async_pool(settings, max_size=1) as pool:
        return await reap_expired_leases(pool, settings.max_attempts)
