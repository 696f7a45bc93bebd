"""Where the database is and how to reach it: the connection string (starting the embedded
server when no DATABASE_URL is set), one-off connections, the process's pool, a flow run's async
pool, and migrating the settings' database.

With DATABASE_URL set, any PostgreSQL 14+ is used, and its schema must be current (`grader
migrate`); the embedded database is migrated on first use.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from grader.errors import ConfigError, GraderError, first_line
from grader.settings import Settings
from grader.store.embedded import embedded_url
from grader.store.migrations import migrate, pending
from grader.store.queries import query

_url_lock = threading.Lock()


@cache
def _checked_url(url: str) -> str:
    """`url`, once this process has seen its schema is current (a GraderError if it is not)."""

    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            behind = pending(conn)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to the database: {first_line(exc)}") from None
    if behind:
        raise GraderError(
            f"the database schema is behind ({len(behind)} migration(s) pending): "
            "run `grader migrate`"
        )
    return url


def database_url(settings: Settings, check_schema: bool = True) -> str:
    """The connection string to use, starting the embedded server if that is the one. With
    `check_schema`, the schema is known to be current (checked once per process and URL)."""
    if settings.database_url:
        return _checked_url(settings.database_url) if check_schema else settings.database_url
    with _url_lock:
        return embedded_url(settings.pgdata)


def connect(settings: Settings, check_schema: bool = True) -> psycopg.Connection:
    """One autocommit connection, for commands that run a few statements and exit."""
    url = database_url(settings, check_schema)
    try:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to the database: {first_line(exc)}") from None


_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


def get_pool(settings: Settings) -> ConnectionPool:
    """The process-wide pool for the synchronous client API, one per database."""
    url = database_url(settings)
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=10,
                kwargs={"autocommit": True, "row_factory": dict_row},
                # a connection broken by a server restart is replaced, not handed out
                check=ConnectionPool.check_connection,
                open=True,
                name="grader",
            )
            _pools[url] = pool
        return pool


@atexit.register
def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


@asynccontextmanager
async def open_async_pool(
    settings: Settings, max_size: int = 10
) -> AsyncIterator[AsyncConnectionPool]:
    """A pool for one flow run: it lives on that run's event loop and closes with it."""
    pool = AsyncConnectionPool(
        database_url(settings),
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="grader-flow",
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


def ping(conn: psycopg.Connection) -> None:
    """A round trip to the server: raises psycopg.OperationalError when it is away."""
    conn.execute(query("ping"))


def migrate_database(settings: Settings) -> list[str]:
    """Applies what is pending to the settings' database; returns the applied file names."""
    with connect(settings, check_schema=False) as conn:
        return migrate(conn)
