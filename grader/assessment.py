"""From the model's replies to the grade a teacher sees: each reply checked against the rubric
and priced, the samples combined, the essay's signs of a prompt injection and every reason a
person should review it. The parse-score task and a batch line use it alike.

It sits above `grading`, `quality` and `review` (it composes them), so that none of those
packages needs another's upper layer.
"""

from __future__ import annotations

from dataclasses import replace

from grader.grading.grade import Grade
from grader.grading.pricing import Prices, call_cost
from grader.grading.scoring import ModelReply, combine_samples, parse_reply
from grader.quality.injection import detect_injection
from grader.review import flag
from grader.store.jobs import Submission


def score_replies(
    replies: list[ModelReply],
    submission: Submission,
    prices: Prices,
    disagreement_points: int,
    review_rule: tuple[str, ...] = (),
    batch: bool = False,
) -> Grade:
    """The model's answers (one per sample) checked against the rubric and priced (at the
    Batch API's prices with `batch`), combined into one grade (the median per criterion), with
    the essay's signs of a prompt injection and every reason a person should review it (the
    rubric's bounds hold whatever the model said). parse-score's work, and a batch line's."""
    grades = []
    for reply in replies:
        grade = parse_reply(reply, submission.rubric)
        cost = call_cost(grade.model, grade.prompt_tokens, grade.completion_tokens, prices, batch)
        grades.append(replace(grade, cost_usd=cost))
    grade = replace(
        combine_samples(grades, disagreement_points),
        injection_signals=detect_injection(submission.essay),
    )
    return flag(grade, review_rule)
