-- The server itself: a round trip for health checks, and whether a database exists.

-- name: ping
-- A round trip, for health checks.
SELECT 1;

-- name: database_exists
-- Whether a database of this name exists on the server (before creating it).
SELECT 1 FROM pg_database WHERE datname = %s;
