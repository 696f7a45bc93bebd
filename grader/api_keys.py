"""API keys for the HTTP API: created with `grader api-key create`, sent as bearer tokens.

A key is 32 random bytes, shown once; only its sha256 is stored (a key this long needs no slow
hash), with its first characters so that a person can tell keys apart. Every job made with a
key belongs to it: another key gets 404 for it, as for a job that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import UUID

import psycopg

from grader.db import query
from grader.errors import NotFoundError

KEY_PREFIX = "gk_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(conn: psycopg.Connection, name: str) -> tuple[str, dict[str, Any]]:
    """A new key and its record; the key itself is not stored and cannot be shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        query("insert_api_key"),
        {"name": name, "key_hash": _hash(key), "key_prefix": key[:10]},
    ).fetchone()
    return key, dict(row)


def revoke_key(conn: psycopg.Connection, key: str) -> dict[str, Any]:
    """Revokes a live key named by its id or its prefix."""
    row = conn.execute(query("revoke_api_key"), {"key": key.strip()}).fetchone()
    if row is None:
        raise NotFoundError(f"no live API key with id or prefix {key.strip()[:40]!r}")
    return dict(row)


def list_keys(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(query("list_api_keys")).fetchall()]


def authenticate(conn: psycopg.Connection, key: str) -> UUID | None:
    """The id of the live key, or None for an unknown or revoked one."""
    row = conn.execute(query("api_key_by_hash"), {"key_hash": _hash(key)}).fetchone()
    return row["key_id"] if row else None
