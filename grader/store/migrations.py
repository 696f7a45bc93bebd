"""Applies the numbered SQL files in migrations/ in order, each once, each in a transaction.

The ledger is grader.schema_migrations (version, file name, sha256 of the file). An advisory lock
keeps two migrators from interleaving; an applied file whose content changed is refused, since
the database would no longer match what the file says.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from grader.errors import MigrationError, first_line
from grader.store.queries import query

# the top-level migrations/ folder, installed as the package `migrations`
MIGRATIONS_DIR = Path(str(resources.files("migrations")))

_FILENAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    filename: str
    sql: str
    checksum: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name} is not named NNNN_lowercase_words.sql"
            )
        data = path.read_bytes()
        migrations.append(
            Migration(
                version=match.group(1),
                filename=path.name,
                sql=data.decode("utf-8"),
                checksum=hashlib.sha256(data).hexdigest(),
            )
        )
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def pending(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """File names not yet applied (all of them on an empty database)."""
    migrations = discover(directory)
    if conn.execute(query("migrations_table_exists")).fetchone()["exists"] is None:
        return [m.filename for m in migrations]
    applied = {row["version"] for row in conn.execute(query("applied_migrations"))}
    return [m.filename for m in migrations if m.version not in applied]


def migrate(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Applies what is pending on an autocommit connection; returns the applied file names."""
    migrations = discover(directory)
    conn.execute(query("lock_migrations"))
    try:
        conn.execute(query("create_migrations_table"))
        applied = {row["version"]: row for row in conn.execute(query("applied_migrations"))}
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(
                f"the database has migration {applied[unknown[0]]['filename']} that this version "
                "of the grader does not know; upgrade the grader"
            )
        done = []
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.filename} was changed after it was applied "
                        "(checksum differs); restore it and put the change in a new migration"
                    )
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        query("record_migration"),
                        {
                            "version": migration.version,
                            "filename": migration.filename,
                            "checksum": migration.checksum,
                        },
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.filename} failed and was rolled back: {first_line(exc)}"
                ) from None
            done.append(migration.filename)
        return done
    finally:
        conn.execute(query("unlock_migrations"))
