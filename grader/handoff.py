"""Hand-off of a new job to Prefect: start the grade-submission deployment for it.

Runs after the job is committed, on a background event loop, so the caller never waits on
Prefect. A failed hand-off changes nothing: the job stays pending and the scheduled
grade-pending flow grades it. The database, not Prefect's queue, is what makes a job durable.

One thread runs one event loop with one Prefect client per API, so hand-offs share
connections instead of paying for a client (and its API version check) each. At interpreter
exit the hand-offs under way are given a few seconds to finish, so that a short-lived command
still completes its own.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from uuid import UUID

from grader.settings import Settings
from grader.store.connections import get_pool
from grader.store.jobs import set_flow_run_id

log = logging.getLogger("grader.handoff")

HANDOFF_TIMEOUT_SECONDS = 10.0
# hand-offs in flight at once: a burst of triggers queues here instead of swamping the server
HANDOFF_CONCURRENCY = 8


class _Handoffs:
    """The background loop, its Prefect clients, and the hand-offs under way."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.slots = asyncio.Semaphore(HANDOFF_CONCURRENCY)
        self.clients: dict[str, object] = {}
        self.pending: set[concurrent.futures.Future] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="grader-handoff", daemon=True
        )
        self.thread.start()

    def submit(self, settings: Settings, task_id: UUID) -> concurrent.futures.Future:
        future = asyncio.run_coroutine_threadsafe(self._hand_off(settings, task_id), self.loop)
        with self.lock:
            self.pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future) -> None:
        with self.lock:
            self.pending.discard(future)

    async def _client(self, api_url: str):
        from prefect.client.orchestration import PrefectClient

        client = self.clients.get(api_url)
        if client is None:
            client = PrefectClient(api=api_url)
            await client.__aenter__()
            self.clients[api_url] = client
        return client

    async def _hand_off(self, settings: Settings, task_id: UUID) -> UUID | None:
        from prefect.deployments import arun_deployment

        try:
            async with self.slots:
                client = await self._client(settings.prefect_api_url)
                flow_run = await asyncio.wait_for(
                    arun_deployment(
                        settings.deployment,
                        client=client,
                        parameters={"task_id": str(task_id)},
                        # named now, so the worker's log and the UI's title say the same
                        flow_run_name=grade_run_name(task_id),
                        timeout=0,
                        as_subflow=False,
                    ),
                    HANDOFF_TIMEOUT_SECONDS,
                )
        except Exception as exc:  # any failure leaves the job pending, which is safe
            log.warning(
                "hand-off of task %s to Prefect failed (%s); it stays pending for grade-pending",
                task_id,
                type(exc).__name__,
            )
            return None
        await asyncio.to_thread(_record_flow_run, settings, task_id, flow_run.id)
        return flow_run.id

    def drain(self, timeout: float | None = None) -> None:
        with self.lock:
            pending = list(self.pending)
        concurrent.futures.wait(pending, timeout=timeout)

    def close(self) -> None:
        async def close_clients() -> None:
            for client in self.clients.values():
                await client.__aexit__(None, None, None)

        asyncio.run_coroutine_threadsafe(close_clients(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def grade_run_name(task_id: UUID | str) -> str:
    """The name of the flow run that grades one job: grade-<first 8 hex digits of its id>."""
    return f"grade-{str(task_id)[:8]}"


def _record_flow_run(settings: Settings, task_id: UUID, flow_run_id: UUID) -> None:
    with get_pool(settings).connection() as conn:
        set_flow_run_id(conn, task_id, flow_run_id)


_handoffs: _Handoffs | None = None
_handoffs_lock = threading.Lock()


def enabled(settings: Settings) -> bool:
    return bool(settings.prefect_api_url and settings.deployment)


def hand_off(settings: Settings, task_id: UUID) -> concurrent.futures.Future:
    """Starts the deployment for `task_id` in the background; the future gives the flow run
    id, or None if the hand-off failed (the job then waits for grade-pending)."""
    global _handoffs
    with _handoffs_lock:
        if _handoffs is None:
            _handoffs = _Handoffs()
        return _handoffs.submit(settings, task_id)


def drain(timeout: float | None = None) -> None:
    """Waits for the hand-offs under way (a server shutting down, a benchmark)."""
    if _handoffs is not None:
        _handoffs.drain(timeout)


@atexit.register
def _finish_at_exit() -> None:
    global _handoffs
    if _handoffs is not None:
        _handoffs.drain(timeout=HANDOFF_TIMEOUT_SECONDS)
        _handoffs.close()
        _handoffs = None
