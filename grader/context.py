"""What a flow run works with: its settings, a database pool on its event loop, the model client
and the price table. A flow builds one at its entry (`open_run_context`) and passes it to every
task, so nothing below reads the environment or opens its own connections. And the run's one
test hook, `pause_point`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from uuid import UUID

import openai
from psycopg_pool import AsyncConnectionPool

from grader.grading.pricing import Prices, load_prices
from grader.model.client import model_client
from grader.settings import Settings
from grader.store.connections import open_async_pool


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    pool: AsyncConnectionPool = field(repr=False)
    llm: openai.AsyncOpenAI | None = field(repr=False)  # None in runs that call no model
    prices: Prices = field(repr=False)
    flow_run_id: UUID | None = None  # recorded on the jobs this run claims in bulk


@asynccontextmanager
async def open_run_context(
    settings: Settings, pool_size: int, run_id: object = None, model: bool = True
) -> AsyncIterator[RunContext]:
    """The resources of one flow run, closed with it. `run_id` makes the worker id this run's
    own (process plus run), so that two runs in one process never release each other's jobs.
    A bad price table or a missing model setting stops the run here, before it claims a job."""
    if run_id is not None:
        settings = replace(settings, worker_id=f"{settings.worker_id}:{str(run_id)[:8]}")
    prices = load_prices(settings.prices_file)
    async with AsyncExitStack() as stack:
        llm = await stack.enter_async_context(model_client(settings)) if model else None
        pool = await stack.enter_async_context(open_async_pool(settings, max_size=pool_size))
        yield RunContext(settings, pool, llm, prices, UUID(str(run_id)) if run_id else None)


async def pause_point(step: str, ctx: RunContext) -> None:
    """The one test hook (GRADER_TEST_PAUSE_AFTER=step:seconds): hold the job after a step so
    that a crash test can kill the worker exactly at that boundary. Unset, it does nothing."""
    pause = ctx.settings.test_pause_after
    if pause and pause[0] == step:
        await asyncio.sleep(pause[1])
