"""Hand-off of a new job to Prefect: start the grade-submission deployment for it.

Runs after the job is committed, on a background thread, so the caller never waits on Prefect.
A failed hand-off changes nothing: the job stays pending and the scheduled grade-pending flow
grades it. The database, not Prefect's queue, is what makes a job durable. Threads of the
executor are joined at interpreter exit, so a short-lived command still completes its hand-offs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

from grader import db
from grader.settings import Settings

log = logging.getLogger("grader.handoff")

HANDOFF_TIMEOUT_SECONDS = 10.0

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def enabled(settings: Settings) -> bool:
    return bool(settings.prefect_api_url and settings.deployment)


def hand_off(settings: Settings, task_id: UUID) -> Future[UUID | None]:
    """Starts the deployment for `task_id` in the background; the future gives the flow run
    id, or None if the hand-off failed (the job then waits for grade-pending)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grader-handoff")
    return _executor.submit(_hand_off, settings, task_id)


def _hand_off(settings: Settings, task_id: UUID) -> UUID | None:
    try:
        flow_run_id = asyncio.run(
            asyncio.wait_for(_start_flow_run(settings, task_id), HANDOFF_TIMEOUT_SECONDS)
        )
    except Exception as exc:  # any failure leaves the job pending, which is safe
        log.warning(
            "hand-off of task %s to Prefect failed (%s); it stays pending for grade-pending",
            task_id,
            type(exc).__name__,
        )
        return None
    with db.get_pool(settings).connection() as conn:
        conn.execute(db.query("set_flow_run_id"), {"task_id": task_id, "flow_run_id": flow_run_id})
    return flow_run_id


async def _start_flow_run(settings: Settings, task_id: UUID) -> UUID:
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments import arun_deployment

    async with PrefectClient(api=settings.prefect_api_url) as client:
        flow_run = await arun_deployment(
            settings.deployment,
            client=client,
            parameters={"task_id": str(task_id)},
            timeout=0,
            as_subflow=False,
        )
    return flow_run.id


def drain() -> None:
    """Waits for the hand-offs under way to finish (a server shutting down, a benchmark)."""
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)
