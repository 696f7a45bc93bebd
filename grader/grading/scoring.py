"""From the model's reply to a grade: the reply as call-OpenAI got it, its checks against the
rubric (JSON, the schema, every bound), and one grade from several samples of the same essay.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import median_low

from pydantic import (
    ValidationError,
)

from grader.errors import ModelOutputError
from grader.grading.grade import CriterionScore, Grade
from grader.grading.rubric import Rubric, validation_summary


@dataclass(frozen=True)
class ModelReply:
    """What call-OpenAI got back: the raw answer, before parse-score trusts any of it."""

    content: str | None = field(repr=False)  # may quote the essay
    finish_reason: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    prompt_version: str | None = None


def parse_reply(reply: ModelReply, rubric: Rubric) -> Grade:
    """Checks the model's answer against the rubric: JSON, the schema, every bound."""
    if reply.finish_reason == "length":
        raise ModelOutputError("the model's answer was cut off (finish_reason=length)")
    if not reply.content:
        raise ModelOutputError(
            f"the model gave no answer (finish_reason={reply.finish_reason or 'none'})"
        )
    try:
        answer = rubric.answer_model().model_validate_json(reply.content)
    except ValidationError as exc:
        raise ModelOutputError(
            f"the model's answer does not fit the rubric: {validation_summary(exc)}"
        ) from None
    scores = answer.criteria
    return Grade(
        criteria=tuple(
            CriterionScore(
                key=c.key,
                name=c.name,
                score=getattr(scores, c.key).score,
                max_points=c.max_points,
                justification=getattr(scores, c.key).justification.strip(),
                confidence=getattr(scores, c.key).confidence,
            )
            for c in rubric.criteria
        ),
        feedback=answer.overall_feedback.strip(),
        model=reply.model,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        model_attempts=reply.attempts,
        prompt_version=reply.prompt_version,
    )


def combine_samples(grades: list[Grade], disagreement_points: int) -> Grade:
    """One grade from K gradings of the same essay: per criterion the median score (the lower
    of the two middle ones when K is even: always a score some sample gave), with that
    sample's justification and confidence, and every sample's score; the criteria whose
    samples lie more than `disagreement_points` apart are named as disagreement. Tokens, cost
    and calls add up over all K."""
    if len(grades) == 1:
        return grades[0]
    criteria = []
    for i in range(len(grades[0].criteria)):
        scores = [g.criteria[i].score for g in grades]
        kept = next(g.criteria[i] for g in grades if g.criteria[i].score == median_low(scores))
        criteria.append(replace(kept, samples=tuple(scores)))
    total = sum(c.score for c in criteria)
    closest = min(grades, key=lambda g: abs(g.total_score - total))
    costs = [g.cost_usd for g in grades]
    return replace(
        closest,
        criteria=tuple(criteria),
        prompt_tokens=sum(g.prompt_tokens for g in grades),
        completion_tokens=sum(g.completion_tokens for g in grades),
        model_attempts=sum(g.model_attempts for g in grades),
        cost_usd=None if None in costs else round(sum(costs), 6),
        disagreement=tuple(
            c.key for c in criteria if max(c.samples) - min(c.samples) > disagreement_points
        ),
    )
