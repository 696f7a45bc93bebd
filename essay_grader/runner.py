"""Running the grading flows in this process: what `grader run-pending`, `grader reap`, the demo
and a client with no worker to hand jobs to do. The caller's settings reach the flow through
`settings_scope` (never os.environ, never flow parameters), and Prefect is configured offline
first, pointed at the local stack's API when one runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any, TypeVar

import psycopg

from essay_grader.prefect_setup import configure_prefect
from grader.settings import Settings, settings_scope
from grader.store.connections import connect, open_async_pool
from grader.store.jobs import unfinished_job_counts

T = TypeVar("T")


def run_here(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    """Runs `work()` (a coroutine calling flows) on a new event loop with `settings`."""
    configure_prefect()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = (
        temporary_settings({PREFECT_API_URL: settings.prefect_api_url})
        if settings.prefect_api_url
        else nullcontext()
    )
    with api, settings_scope(settings):
        return asyncio.run(work())


async def _report_progress(
    settings: Settings, interval: float, report: Callable[[float, dict[str, int]], None]
) -> None:
    started = time.monotonic()
    async with open_async_pool(settings, max_size=1) as pool:
        while True:
            await asyncio.sleep(interval)
            try:
                counts = await unfinished_job_counts(pool)
            except psycopg.OperationalError:
                continue  # the database is away for a moment; the flow retries on its own
            report(time.monotonic() - started, counts)


def run_pending(
    settings: Settings,
    limit: int,
    concurrency: int,
    report: Callable[[float, dict[str, int]], None],
    interval: float = 5.0,
) -> dict[str, Any]:
    """Grades pending jobs with the grade-pending flow here, calling `report(seconds, counts)`
    every `interval` seconds; returns the outcomes, the time taken, and why grading is paused
    (a spending cap) if it is."""
    settings.require_model()
    from flows.grading import grade_pending
    from grader.store.spending import spending

    async def work() -> dict[str, int]:
        watcher = asyncio.create_task(_report_progress(settings, interval, report))
        try:
            return await grade_pending(limit, concurrency)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    started = time.monotonic()
    outcomes = run_here(settings, work)
    elapsed = time.monotonic() - started
    with connect(settings) as conn:
        paused = spending(conn)["paused_reason"]
    return {
        **outcomes,
        "graded": sum(outcomes.values()),
        "seconds": round(elapsed, 2),
        "paused_reason": paused,
    }


def reap(settings: Settings) -> dict[str, int]:
    """The reaper flow, here: jobs of lost workers back to pending (or failed)."""
    from flows.maintenance import reap_stuck_jobs

    return run_here(settings, reap_stuck_jobs)
