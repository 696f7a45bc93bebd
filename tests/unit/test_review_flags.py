"""Which grades go to a teacher (grader.review.flag): each review reason raised only by what
computed it, and the review rule on zero and full scores."""

from __future__ import annotations

from dataclasses import replace

from grader import review
from grader.grading.grade import CriterionScore, Grade


def _grade(**criteria) -> Grade:
    return Grade(
        criteria=tuple(
            CriterionScore(key=k, name=k, score=s, max_points=10, justification="", **extra)
            for k, (s, extra) in criteria.items()
        ),
        feedback="",
        model="gpt-4o-mini",
        prompt_tokens=1,
        completion_tokens=1,
        model_attempts=1,
    )


def test_reasons_are_raised_only_by_what_computed_them() -> None:
    plain = _grade(a=(5, {"confidence": "high"}), b=(7, {"confidence": "medium"}))
    assert review.flag(plain).review_state == "auto"
    assert review.flag(plain).review_reasons == ()
    flagged = review.flag(
        replace(
            _grade(
                a=(0, {"confidence": "low"}),
                b=(10, {"confidence": "high", "samples": (4, 10, 10)}),
            ),
            injection_signals=("requests_score",),
            disagreement=("b",),
        ),
        rule=("zero", "full"),
    )
    assert flagged.review_state == "needs_review"
    assert list(flagged.review_reasons) == [
        {"reason": "possible_prompt_injection", "detail": ["requests_score"]},
        {"reason": "samples_disagree", "detail": {"b": [4, 10, 10]}},
        {"reason": "low_confidence", "detail": ["a"]},
        {"reason": "rule", "detail": ["a", "b"]},
    ]
    only_zero = review.flag(_grade(a=(0, {}), b=(10, {})), rule=("zero",))
    assert list(only_zero.review_reasons) == [{"reason": "rule", "detail": ["a"]}]
