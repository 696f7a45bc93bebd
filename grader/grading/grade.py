"""The grade in the one shape it has everywhere: parse-score writes a Grade (without an id),
persist-result stores it, a status check reads it back (with its id), the CLI prints it, and the
HTTP API serves it (its response models are derived from these classes).

Plain dataclasses, not Pydantic models: `grader status` reads them. The values computed from the
fields (a grade's total, whether it is simulated) are properties, listed in COMPUTED, and
included by `to_dict()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

SIMULATED_MODEL_PREFIX = "simulated:"


@dataclass(frozen=True)
class CriterionScore:
    key: str
    name: str
    score: int
    max_points: int
    justification: str
    confidence: str | None = None  # the model's own: low, medium or high
    samples: tuple[int, ...] = ()  # each sample's score, when the essay was graded K > 1 times


@dataclass(frozen=True)
class Grade:
    """A grade checked against its rubric: a score per criterion, the model's feedback, and
    what it cost."""

    COMPUTED: ClassVar[tuple[str, ...]] = (
        "total_score",
        "max_score",
        "simulated",
        "possible_prompt_injection",
    )

    criteria: tuple[CriterionScore, ...]
    feedback: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    model_attempts: int
    cost_usd: float | None = None  # USD; None when the price table has no price for the model
    injection_signals: tuple[str, ...] = ()  # grader.quality.injection's signals found in the essay
    prompt_version: str | None = None  # hash of system prompt, rubric and anchors
    disagreement: tuple[str, ...] = ()  # criteria whose samples spread more than allowed
    # auto (no reason to look), needs_review (reasons below), reviewed (a person decided:
    # final, whatever the system does later)
    review_state: str = "auto"
    review_reasons: tuple[dict[str, Any], ...] = ()  # {"reason": ..., "detail": ...}
    version: int = 1  # goes up with every decision: a decision names the version it saw
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    grade_id: UUID | None = None  # set once the grade is stored

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Grade:
        """A stored grade (criteria as the JSON list persist-result wrote)."""
        return cls(
            criteria=tuple(
                CriterionScore(**{**c, "samples": tuple(c.get("samples", ()))})
                for c in row["criteria"]
            ),
            feedback=row["feedback"],
            model=row["model"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            model_attempts=row["model_attempts"],
            cost_usd=row["cost_usd"],
            injection_signals=tuple(row["injection_signals"]),
            prompt_version=row["prompt_version"],
            disagreement=tuple(row["disagreement"]),
            review_state=row["review_state"],
            review_reasons=tuple(row["review_reasons"]),
            version=row["version"],
            reviewed_by=row["reviewed_by"],
            reviewed_at=row["reviewed_at"],
            grade_id=row["grade_id"],
        )

    @property
    def total_score(self) -> int:
        return sum(c.score for c in self.criteria)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.criteria)

    @property
    def simulated(self) -> bool:
        """True when the built-in simulator, not a model, made up the scores."""
        return self.model.startswith(SIMULATED_MODEL_PREFIX)

    @property
    def possible_prompt_injection(self) -> bool:
        """The essay seems to address the grader: a person should review this grade."""
        return bool(self.injection_signals)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **{name: getattr(self, name) for name in self.COMPUTED}}
