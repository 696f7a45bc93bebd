"""Monitoring reads: named queries as tables, CSV streamed with COPY, keyset pages of grades,
recent and failed jobs, grading-time statistics.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from grader.errors import InvalidInputError
from grader.store.queries import query

# --- monitoring and reports (sync) ---------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A named query's result: its column names (also when there are no rows) and rows."""

    columns: list[str]
    rows: list[dict[str, Any]]


def table(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> Table:
    cur = conn.execute(query(name), params)
    return Table([column.name for column in cur.description], cur.fetchall())


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["created_at"].isoformat(), str(row["grade_id"])])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    if not cursor:
        return None, None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, grade_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), UUID(grade_id)
    except (ValueError, TypeError):
        raise InvalidInputError("the page cursor is not valid") from None


def keyset_page(
    conn: psycopg.Connection, name: str, params: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a grades query ordered by (created_at, grade_id) that takes `after_created`,
    `after_id` and `limit`: its rows and the opaque cursor of the next page (None on the last).
    Each page is an index range scan, however deep it is."""
    after_created, after_id = _decode_cursor(cursor)
    rows = conn.execute(
        query(name),
        {**params, "after_created": after_created, "after_id": after_id, "limit": limit + 1},
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _encode_cursor(rows[-1]) if more and rows else None


def recent_jobs(conn: psycopg.Connection, limit: int) -> Table:
    return table(conn, "recent_jobs", {"limit": limit})


def failed_jobs(conn: psycopg.Connection, limit: int) -> Table:
    return table(conn, "failed_jobs", {"limit": limit})


def grading_time_stats(conn: psycopg.Connection, days: int) -> dict[str, Any]:
    return {"days": days, **conn.execute(query("grading_time_stats"), {"days": days}).fetchone()}


def copy_csv(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> bytes:
    """A named query's rows as CSV with a header, streamed with COPY: a million narrow rows
    cost tens of MB this way, not the GB of Python row objects."""
    buffer = io.BytesIO()
    statement = f"COPY ({query(name)}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    return buffer.getvalue()
