"""The gradebook export's reads: the criterion keys of the rubrics it covers, and its grades a
keyset page at a time, oldest first (production jobs only: evaluation runs are left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from grader.export import record
from grader.store.monitoring import keyset_page
from grader.store.queries import query

PAGE_ROWS = 20_000


def criterion_keys(
    conn: psycopg.Connection,
    since: datetime | None = None,
    rubric: str | None = None,
    api_key_id: UUID | None = None,
) -> list[str]:
    """The criterion keys of the rubrics the export covers, in rubric order, each once."""
    rows = conn.execute(
        query("export_rubrics"), {"since": since, "rubric": rubric, "api_key_id": api_key_id}
    ).fetchall()
    keys: dict[str, None] = {}
    for row in sorted(rows, key=lambda r: r["name"]):
        keys.update(dict.fromkeys(c["key"] for c in row["definition"]["criteria"]))
    return list(keys)


def page(
    conn: psycopg.Connection,
    *,
    since: datetime | None = None,
    rubric: str | None = None,
    api_key_id: UUID | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the gradebook and the cursor of the next (None on the last)."""
    params = {"since": since, "rubric": rubric, "api_key_id": api_key_id}
    rows, next_cursor = keyset_page(conn, "export_grades", params, cursor, limit)
    return [record(r) for r in rows], next_cursor


def grades(
    conn: psycopg.Connection,
    since: datetime | None = None,
    rubric: str | None = None,
    api_key_id: UUID | None = None,
) -> Iterator[dict[str, Any]]:
    """Every grade the export covers, oldest first, a page at a time."""
    cursor = None
    while True:
        rows, cursor = page(
            conn,
            since=since,
            rubric=rubric,
            api_key_id=api_key_id,
            cursor=cursor,
            limit=PAGE_ROWS,
        )
        yield from rows
        if cursor is None:
            return
