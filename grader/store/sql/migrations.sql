-- The migration runner's ledger and lock (grader/store/migrations.py).

-- name: create_migrations_table
-- The ledger of applied migration files; created before the first migration runs.
CREATE SCHEMA IF NOT EXISTS grader;
CREATE TABLE IF NOT EXISTS grader.schema_migrations (
    version     text PRIMARY KEY,
    filename    text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Serialises migrators, across all of their transactions, until unlock_migrations.
SELECT pg_advisory_lock(hashtext('grader.schema_migrations'));

-- name: unlock_migrations
SELECT pg_advisory_unlock(hashtext('grader.schema_migrations'));

-- name: migrations_table_exists
-- NULL in `exists` on a database that never ran a migration.
SELECT to_regclass('grader.schema_migrations') AS exists;

-- name: applied_migrations
-- Migrations already applied, with the checksum of the file as it was then.
SELECT version, filename, checksum FROM grader.schema_migrations ORDER BY version;

-- name: record_migration
-- Marks one migration file applied.
INSERT INTO grader.schema_migrations (version, filename, checksum)
VALUES (%(version)s, %(filename)s, %(checksum)s);
