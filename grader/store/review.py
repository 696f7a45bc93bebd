"""Teachers' review in the database: the queue of grades by review state, a grade's detail and
history, decisions, and the rubric-change regrade.

Every decision is one transaction: the grade row is locked, its version must be the one the
person saw (else ConflictError: someone decided meanwhile), the scores change within the
rubric's bounds, the version goes up, and an audit row keeps who, when, before, after and the
note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from grader.errors import ConflictError, InvalidInputError, NotFoundError
from grader.review import REASONS, apply_scores, check_decision
from grader.store.jobs import create_grading_job
from grader.store.monitoring import keyset_page
from grader.store.queries import query

# --- the queue -----------------------------------------------------------------------------


def queue(
    conn: psycopg.Connection,
    *,
    state: str = "needs_review",
    reason: str | None = None,
    rubric: str | None = None,
    api_key_id: UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of grades in `state`, oldest first, and the cursor of the next page (None on
    the last). With `api_key_id`, only that key's jobs."""
    if state not in ("auto", "needs_review", "reviewed"):
        raise InvalidInputError("state must be auto, needs_review or reviewed")
    if reason is not None and reason not in REASONS:
        raise InvalidInputError(f"reason must be one of {', '.join(REASONS)}")
    params = {"state": state, "reason": reason, "rubric": rubric, "api_key_id": api_key_id}
    return keyset_page(conn, "review_queue", params, cursor, limit)


def counts(conn: psycopg.Connection, api_key_id: UUID | None = None) -> dict[str, Any]:
    """Grades waiting for review and reviewed, and those waiting by reason (auto grades are
    not counted: that would read every grade)."""
    row = conn.execute(query("review_counts"), {"api_key_id": api_key_id}).fetchone()
    return {
        "needs_review": row["needs_review"],
        "reviewed": row["reviewed"],
        "by_reason": {r: (row["by_reason"] or {}).get(r, 0) for r in REASONS},
    }


def detail(conn: psycopg.Connection, task_id: UUID, api_key_id: UUID | None = None) -> dict:
    """A graded job for review: the essay, the grade and its history."""
    row = conn.execute(
        query("review_detail"), {"task_id": task_id, "api_key_id": api_key_id}
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no grade for task {task_id}")
    return {**row, "history": history(conn, row["grade_id"])}


# --- decisions -----------------------------------------------------------------------------


def decide(
    conn: psycopg.Connection,
    task_id: UUID,
    *,
    action: str,
    who: str,
    version: int | None,
    scores: dict[str, int] | None = None,
    note: str = "",
    api_key_id: UUID | None = None,
) -> dict[str, Any]:
    """Accepts the grade as it is, or overrides some criterion scores; the grade becomes
    `reviewed`. `version`: the version the person saw (None: whatever is current, for a
    command run by hand). ConflictError if it changed meanwhile."""
    scores = scores or {}
    check_decision(action, scores, note)
    with conn.transaction():
        row = conn.execute(
            query("review_lock_grade"), {"task_id": task_id, "api_key_id": api_key_id}
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no grade for task {task_id}")
        if version is not None and row["version"] != version:
            raise ConflictError(
                f"the grade of task {task_id} changed since version {version} (now version "
                f"{row['version']}, {row['review_state']}): reload it and decide again"
            )
        criteria, before, after = apply_scores(row["criteria"], scores)
        updated = conn.execute(
            query("review_apply"),
            {
                "grade_id": row["grade_id"],
                "criteria": Jsonb(criteria),
                "total_score": sum(after.values()),
                "who": who,
            },
        ).fetchone()
        conn.execute(
            query("review_audit"),
            {
                "grade_id": row["grade_id"],
                "action": action,
                "who": who,
                "before": Jsonb(before),
                "after": Jsonb(after),
                "note": note,
            },
        )
    return {
        "task_id": str(task_id),
        "action": action,
        "version": updated["version"],
        "before": before,
        "after": after,
        "total_score": sum(after.values()),
        "reviewed_by": who,
    }


def history(conn: psycopg.Connection, grade_id: UUID) -> list[dict[str, Any]]:
    return conn.execute(query("review_history"), {"grade_id": grade_id}).fetchall()


# --- rubric versions and regrading ------------------------------------------------------------


def regrade(
    conn: psycopg.Connection,
    rubric_name: str,
    *,
    since: datetime | None = None,
    only_auto: bool = False,
    include_reviewed: bool = False,
) -> dict[str, Any]:
    """Queues a new grading job, by the newest version of the rubric `rubric_name`, for every
    submission whose latest grade was made with an older version. Earlier grades stay (as
    history); a reviewed grade is left alone unless `include_reviewed`; `only_auto` leaves out
    grades waiting for review too. Idempotent: a submission whose regrade is already queued
    (or done) gets nothing new."""
    latest = conn.execute(query("latest_rubric_version"), {"name": rubric_name}).fetchone()
    if latest is None:
        raise NotFoundError(f"no rubric named {rubric_name!r}")
    rows = conn.execute(
        query("regrade_candidates"),
        {"name": rubric_name, "rubric_id": latest["rubric_id"], "since": since},
    ).fetchall()
    counts = {"queued": 0, "already_queued": 0, "skipped_reviewed": 0, "skipped_needs_review": 0}
    for row in rows:
        if row["review_state"] == "reviewed" and not include_reviewed:
            counts["skipped_reviewed"] += 1
            continue
        if row["review_state"] == "needs_review" and only_auto:
            counts["skipped_needs_review"] += 1
            continue
        _, created = create_grading_job(
            conn, row["submission_id"], latest["rubric_id"], row["api_key_id"]
        )
        counts["queued" if created else "already_queued"] += 1
    return {"rubric": rubric_name, "version": latest["version"], **counts}
