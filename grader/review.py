"""Teachers stay in charge: why a grade needs a person, the review queue, and decisions.

A grade is `auto` (nothing to look at), `needs_review` (with its reasons, each with the evidence
that raised it) or `reviewed` (a person accepted it or overrode scores: final; nothing the
system does later replaces it). Reasons appear only where something computed them: the
injection detector, samples that disagreed, the model's own low confidence, the school's rule
(GRADER_REVIEW_RULE: `zero`, `full` or `zero,full`: any criterion at 0 or at full marks), and the
checks of grader/quality/recheck.py (a recheck without the passages that address the grader
came out lower, a justification repeats the essay's instructions, or such a recheck failed).

Every decision is one transaction: the grade row is locked, its version must be the one the
person saw (else ConflictError: someone decided meanwhile), the scores change within the
rubric's bounds, the version goes up, and an audit row keeps who, when, before, after and the
note.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from grader.errors import ConflictError, InvalidInputError, NotFoundError
from grader.grading.grade import Grade
from grader.store.jobs import create_grading_job
from grader.store.monitoring import keyset_page
from grader.store.queries import query

# reason -> how the review page names it
REASONS = {
    "possible_prompt_injection": "possible prompt injection",
    "samples_disagree": "gradings disagree",
    "low_confidence": "low model confidence",
    "rule": "score at 0 or full marks",
    "regrade_differs": "lower when graded without the passages that address the grader",
    "justification_mentions_instructions": "justification repeats instructions from the essay",
    "recheck_failed": "suspect grade whose recheck failed",
}
MAX_NOTE_CHARS = 2000


def flag(grade: Grade, rule: tuple[str, ...] = ()) -> Grade:
    """The grade with its reasons for review (and `needs_review` when there are any)."""
    reasons: list[dict[str, Any]] = []
    if grade.injection_signals:
        reasons.append(
            {"reason": "possible_prompt_injection", "detail": list(grade.injection_signals)}
        )
    if grade.disagreement:
        samples = {c.key: list(c.samples) for c in grade.criteria if c.key in grade.disagreement}
        reasons.append({"reason": "samples_disagree", "detail": samples})
    low = [c.key for c in grade.criteria if c.confidence == "low"]
    if low:
        reasons.append({"reason": "low_confidence", "detail": low})
    extreme = [
        c.key
        for c in grade.criteria
        if ("zero" in rule and c.score == 0) or ("full" in rule and c.score == c.max_points)
    ]
    if extreme:
        reasons.append({"reason": "rule", "detail": extreme})
    return replace(
        grade,
        review_reasons=tuple(reasons),
        review_state="needs_review" if reasons else "auto",
    )


def add_reasons(grade: Grade, reasons: list[dict[str, Any]]) -> Grade:
    """The grade with more reasons for review, computed elsewhere (grader/quality/recheck.py), and
    `needs_review` if there are any; its scores stay as they are."""
    if not reasons:
        return grade
    return replace(
        grade, review_reasons=(*grade.review_reasons, *reasons), review_state="needs_review"
    )


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


def parse_scores(items: list[str]) -> dict[str, int]:
    """["thesis=7", "evidence=5"] -> {"thesis": 7, "evidence": 5}."""
    scores: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"-?\d+", value.strip()):
            raise InvalidInputError(f"--score takes KEY=N (a whole number), got {item!r}")
        scores[key.strip()] = int(value)
    return scores


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
    if action not in ("accept", "override"):
        raise InvalidInputError("the decision is accept or override")
    scores = scores or {}
    if action == "accept" and scores:
        raise InvalidInputError("accept takes no scores: override them instead")
    if action == "override" and not scores:
        raise InvalidInputError("override needs at least one score (KEY=N)")
    if len(note) > MAX_NOTE_CHARS or "\x00" in note:
        raise InvalidInputError(f"the note must be text of at most {MAX_NOTE_CHARS} characters")
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
        criteria = [dict(c) for c in row["criteria"]]
        known = {c["key"]: c for c in criteria}
        for key, score in scores.items():
            if key not in known:
                raise InvalidInputError(f"no criterion {key!r} in this grade ({', '.join(known)})")
            if not 0 <= score <= known[key]["max_points"]:
                raise InvalidInputError(
                    f"{key} must be between 0 and {known[key]['max_points']}, got {score}"
                )
        before = {c["key"]: c["score"] for c in criteria}
        for c in criteria:
            c["score"] = scores.get(c["key"], c["score"])
        after = {c["key"]: c["score"] for c in criteria}
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
