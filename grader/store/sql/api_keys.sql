-- API keys of the HTTP API, and the review page's sessions of a key (grader/store/api_keys.py).

-- name: insert_api_key
-- A new API key for the HTTP API, stored as its hash.
INSERT INTO grader.api_keys (name, key_hash, key_prefix)
VALUES (%(name)s, %(key_hash)s, %(key_prefix)s)
RETURNING key_id, name, key_prefix, created_at;

-- name: api_key_by_hash
-- The live (not revoked) key with this hash, for authenticating a request.
SELECT key_id, name FROM grader.api_keys WHERE key_hash = %(key_hash)s AND revoked_at IS NULL;

-- name: revoke_api_key
-- Revokes a key, named by id or by its prefix; its jobs stay, and nobody can read them over
-- HTTP any more.
UPDATE grader.api_keys SET revoked_at = now()
WHERE revoked_at IS NULL AND (key_id::text = %(key)s OR key_prefix = %(key)s)
RETURNING key_id, name, key_prefix;

-- name: list_api_keys
-- Every key, newest first, without its hash.
SELECT key_id, name, key_prefix, created_at, revoked_at
FROM grader.api_keys ORDER BY created_at DESC;

-- name: open_review_session
INSERT INTO grader.review_sessions (session_hash, api_key_id, csrf_token, expires_at)
VALUES (%(session_hash)s, %(api_key_id)s, %(csrf_token)s,
        now() + make_interval(secs => %(seconds)s));

-- name: review_session
-- A live session of a live key (a revoked key ends its sessions).
SELECT s.csrf_token, k.key_id, k.name
FROM grader.review_sessions AS s
JOIN grader.api_keys AS k ON k.key_id = s.api_key_id
WHERE s.session_hash = %(session_hash)s AND s.expires_at > now() AND k.revoked_at IS NULL;

-- name: close_review_session
DELETE FROM grader.review_sessions
WHERE session_hash = %(session_hash)s OR expires_at < now();
