"""The gradebook: every production grade with its student reference, scores per criterion,
review state and who reviewed it, for a school's gradebook or spreadsheet.

Grades are read a page at a time in (graded_at, grade_id) order (keyset pages over an index), so
an export of a million grades holds one page in memory. CSV is written for spreadsheet programs:
UTF-8 with a byte-order mark, every value quoted as needed, and any text value that a
spreadsheet would take for a formula (starting with =, +, -, @, a tab or a carriage return) is
prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import psycopg

from grader.errors import InvalidInputError
from grader.grading.grade import SIMULATED_MODEL_PREFIX
from grader.store.monitoring import keyset_page
from grader.store.queries import query

PAGE_ROWS = 20_000
FIXED = [
    "student_ref",
    "submission_id",
    "task_id",
    "total_score",
    "max_score",
    "review_state",
    "reviewed_by",
    "graded_at",
    "reviewed_at",
    "rubric",
    "rubric_version",
    "model",
    "simulated",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_since(text: str | None, what: str = "--since") -> datetime | None:
    """A date (midnight UTC) or an ISO date-time (UTC unless it says otherwise); None for
    None; InvalidInputError for anything else."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{what} must be a date or date-time, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def _record(row: dict[str, Any]) -> dict[str, Any]:
    scores = {c["key"]: c["score"] for c in row["criteria"]}
    record = {name: row.get(name) for name in FIXED if name != "simulated"}
    record["simulated"] = row["model"].startswith(SIMULATED_MODEL_PREFIX)
    return {**record, "scores": scores}


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
    return [_record(r) for r in rows], next_cursor


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


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text, never run as a formula
    return value


# the columns _cell formats: free text, times, the boolean (the rest are ids and numbers)
_TEXT = frozenset(
    {"student_ref", "reviewed_by", "rubric", "model", "graded_at", "reviewed_at", "simulated"}
)


def write_csv(records: Iterator[dict[str, Any]], keys: list[str], out: IO[str]) -> int:
    out.write("\ufeff")  # spreadsheet programs read UTF-8 only with its byte-order mark
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*FIXED, *keys])
    count = 0
    for record in records:
        scores = record["scores"]
        writer.writerow(
            [_cell(record[name]) if name in _TEXT else record[name] for name in FIXED]
            + [scores.get(key, "") for key in keys]
        )
        count += 1
    return count


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        count += 1
    return count
