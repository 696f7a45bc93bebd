"""The gradebook: every production grade with its student reference, scores per criterion,
review state and who reviewed it, for a school's gradebook or spreadsheet.

grader/store/export.py reads the grades a page at a time (keyset pages over an index) and makes
each row a record; this module writes the records one at a time, so an export of a million grades
holds one page in memory. CSV is written for spreadsheet programs: UTF-8 with a byte-order mark,
every value quoted as needed, and any text value that a spreadsheet would take for a formula
(starting with =, +, -, @, a tab or a carriage return) is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from grader.errors import InvalidInputError
from grader.grading.grade import SIMULATED_MODEL_PREFIX

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


def record(row: dict[str, Any]) -> dict[str, Any]:
    """A gradebook row as the export writes it: the FIXED columns and the scores by criterion."""
    scores = {c["key"]: c["score"] for c in row["criteria"]}
    fixed = {name: row.get(name) for name in FIXED if name != "simulated"}
    fixed["simulated"] = row["model"].startswith(SIMULATED_MODEL_PREFIX)
    return {**fixed, "scores": scores}


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
