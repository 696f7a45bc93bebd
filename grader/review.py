"""Teachers stay in charge: why a grade needs a person, and the checks of a person's decision.

A grade is `auto` (nothing to look at), `needs_review` (with its reasons, each with the evidence
that raised it) or `reviewed` (a person accepted it or overrode scores: final; nothing the
system does later replaces it). Reasons appear only where something computed them: the
injection detector, samples that disagreed, the model's own low confidence, the school's rule
(GRADER_REVIEW_RULE: `zero`, `full` or `zero,full`: any criterion at 0 or at full marks), and the
checks of grader/quality/recheck.py (a recheck without the passages that address the grader
came out lower, a justification repeats the essay's instructions, or such a recheck failed).

The queue, the decisions (one locked transaction each) and their audit are in
grader/store/review.py; this module holds what needs no database.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from grader.errors import InvalidInputError
from grader.grading.grade import Grade

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


def parse_scores(items: list[str]) -> dict[str, int]:
    """["thesis=7", "evidence=5"] -> {"thesis": 7, "evidence": 5}."""
    scores: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"-?\d+", value.strip()):
            raise InvalidInputError(f"--score takes KEY=N (a whole number), got {item!r}")
        scores[key.strip()] = int(value)
    return scores


def check_decision(action: str, scores: dict[str, int], note: str) -> None:
    """InvalidInputError unless the decision is an accept without scores or an override with
    some, with a note of at most MAX_NOTE_CHARS characters of text."""
    if action not in ("accept", "override"):
        raise InvalidInputError("the decision is accept or override")
    if action == "accept" and scores:
        raise InvalidInputError("accept takes no scores: override them instead")
    if action == "override" and not scores:
        raise InvalidInputError("override needs at least one score (KEY=N)")
    if len(note) > MAX_NOTE_CHARS or "\x00" in note:
        raise InvalidInputError(f"the note must be text of at most {MAX_NOTE_CHARS} characters")


def apply_scores(
    criteria: list[dict[str, Any]], scores: dict[str, int]
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, int]]:
    """A grade's criteria with `scores` in place of theirs, and every criterion's score before
    and after; InvalidInputError for a key the grade does not have or a score out of bounds."""
    changed = [dict(c) for c in criteria]
    known = {c["key"]: c for c in changed}
    for key, score in scores.items():
        if key not in known:
            raise InvalidInputError(f"no criterion {key!r} in this grade ({', '.join(known)})")
        if not 0 <= score <= known[key]["max_points"]:
            raise InvalidInputError(
                f"{key} must be between 0 and {known[key]['max_points']}, got {score}"
            )
    before = {c["key"]: c["score"] for c in changed}
    for c in changed:
        c["score"] = scores.get(c["key"], c["score"])
    after = {c["key"]: c["score"] for c in changed}
    return changed, before, after
