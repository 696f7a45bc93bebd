"""API keys for the HTTP API: created with `grader api-key create`, sent as bearer tokens.

A key is 32 random bytes, shown once; only its sha256 is stored (a key this long needs no slow
hash), with its first characters so that a person can tell keys apart. Every job made with a
key belongs to it: another key gets 404 for it, as for a job that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from grader.errors import NotFoundError
from grader.store.queries import query

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


@dataclass(frozen=True)
class Caller:
    """Whoever a live key belongs to: its id (jobs are scoped to it) and its name (what an audit
    row records as who decided)."""

    key_id: UUID
    name: str

    @property
    def who(self) -> str:
        return f"api-key:{self.name}"


def authenticate(conn: psycopg.Connection, key: str) -> Caller | None:
    """The caller of a live key, or None for an unknown or revoked one."""
    row = conn.execute(query("api_key_by_hash"), {"key_hash": _hash(key)}).fetchone()
    return Caller(row["key_id"], row["name"]) if row else None


# --- sessions of the review page ------------------------------------------------------------

SESSION_SECONDS = 8 * 3600  # a working day


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf_token: str  # every form of the session carries it


def open_session(conn: psycopg.Connection, caller: Caller) -> tuple[str, str]:
    """A new session for `caller`: (the cookie value, the CSRF token). Only the cookie value's
    sha256 is stored."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(
        query("open_review_session"),
        {
            "session_hash": _hash(token),
            "api_key_id": caller.key_id,
            "csrf_token": csrf,
            "seconds": SESSION_SECONDS,
        },
    )
    return token, csrf


def find_session(conn: psycopg.Connection, token: str) -> Session | None:
    row = conn.execute(query("review_session"), {"session_hash": _hash(token)}).fetchone()
    return Session(Caller(row["key_id"], row["name"]), row["csrf_token"]) if row else None


def close_session(conn: psycopg.Connection, token: str) -> None:
    """Ends the session (and any expired ones)."""
    conn.execute(query("close_review_session"), {"session_hash": _hash(token)})
