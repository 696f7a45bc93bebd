"""Grading on arrival: a listening worker's LISTEN for jobs that become pending and its heartbeat
row in grader.listeners, and whether a listener is alive (so that the trigger need not hand the
job to Prefect); and a waiting client's LISTEN for jobs that finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from grader.settings import Settings
from grader.store.connections import database_url
from grader.store.queries import query

# A listening worker beats its heart this often; one unheard for LISTENER_ALIVE_SECONDS is gone.
LISTENER_HEARTBEAT_SECONDS = 5.0
LISTENER_ALIVE_SECONDS = 15.0


def listener_alive(conn: psycopg.Connection) -> bool:
    """Whether a grade-on-arrival worker is listening: it takes a new job the moment it is
    committed, so the trigger hands nothing to Prefect."""
    row = conn.execute(query("listener_alive"), {"within_seconds": LISTENER_ALIVE_SECONDS})
    return row.fetchone()["alive"]


async def other_listener_alive(pool: AsyncConnectionPool, worker_id: str) -> bool:
    """Whether a listener other than `worker_id` is alive (the one that takes over)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            query("other_listener_alive"),
            {"worker_id": worker_id, "within_seconds": LISTENER_ALIVE_SECONDS},
        )
        return (await cur.fetchone())["alive"]


@contextmanager
def listening_for_finished(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection of its own that hears every job that reaches a terminal status: its
    notifies() wakes a client waiting for a grade at once."""
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        conn.execute(query("listen_job_finished"))
        yield conn


@asynccontextmanager
async def listening_for_pending(
    settings: Settings, worker_id: str, flow_run_id: UUID | None
) -> AsyncIterator[asyncio.Event]:
    """While the block runs, this worker listens for jobs that become pending and beats its
    heart in grader.listeners. Yields an event set by every notification (the caller clears
    it). The heartbeat row goes when the block ends, or goes stale if the process dies."""
    url = database_url(settings)
    ids = {"worker_id": worker_id, "flow_run_id": flow_run_id}
    arrived = asyncio.Event()
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as listening,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as beat,
    ):

        async def hear() -> None:
            async for _ in listening.notifies():
                arrived.set()

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(LISTENER_HEARTBEAT_SECONDS)
                with contextlib.suppress(psycopg.OperationalError):  # a missed beat is allowed
                    await beat.execute(query("listener_heartbeat"), ids)

        await listening.execute(query("listen_job_pending"))
        await beat.execute(query("listener_heartbeat"), ids)
        helpers = [asyncio.create_task(hear()), asyncio.create_task(heartbeat())]
        try:
            yield arrived
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(psycopg.OperationalError):
                await beat.execute(query("listener_gone"), ids)
