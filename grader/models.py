"""Rubrics and the model's structured answer (Pydantic), and the checks on what goes in (an
essay, a student reference) and what comes back (the answer, turned into a Grade).

A rubric file (TOML or JSON) names criteria with a description and maximum points. From a rubric
we build the Pydantic model the LLM must answer with (sent as a strict JSON schema); the code, not
the model, checks every score against its bound and computes the total.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import median_low
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from grader.errors import InvalidEssayError, InvalidInputError, ModelOutputError, RubricError
from grader.records import CriterionScore, Grade

DEFAULT_RUBRIC = "default.toml"


# What PostgreSQL cannot store in text: NUL, and lone surrogates (undecodable bytes that Python
# smuggles through as U+DC80.., or a JSON "\ud800" escape).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("contains a NUL character or invalid Unicode")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
MAX_STUDENT_REF_CHARS = 200


def check_student_ref(student_ref: str | None) -> str | None:
    """The student reference if it can be stored; InvalidInputError otherwise."""
    if student_ref is None:
        return None
    if len(student_ref) > MAX_STUDENT_REF_CHARS or _UNSTORABLE.search(student_ref):
        raise InvalidInputError(
            f"the student reference must be at most {MAX_STUDENT_REF_CHARS} characters of text"
        )
    return student_ref


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: Annotated[StorableText, Field(min_length=1, max_length=200)]
    description: Annotated[StorableText, Field(min_length=1, max_length=2000)]
    max_points: Annotated[int, Field(ge=1, le=1000)]


class Anchor(BaseModel):
    """An essay the school's teachers scored, shown to the model as a calibration example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    essay: Annotated[StorableText, Field(min_length=1, max_length=20_000)]
    scores: dict[str, int]
    justification: dict[str, Annotated[StorableText, Field(max_length=1000)]] = {}


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[StorableText, Field(min_length=1, max_length=200)]
    criteria: Annotated[tuple[Criterion, ...], Field(min_length=1, max_length=30)]
    # scored examples, in the order they go into the prompt (as many as GRADER_ANCHOR_TOKENS
    # allows); part of the rubric's content, so a grade's rubric says which anchors it saw
    anchors: Annotated[tuple[Anchor, ...], Field(max_length=50)] = ()

    @field_validator("criteria")
    @classmethod
    def _keys_unique(cls, criteria: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        keys = [c.key for c in criteria]
        if len(set(keys)) != len(keys):
            raise ValueError("criterion keys must be unique")
        return criteria

    @model_validator(mode="after")
    def _anchors_fit(self) -> Rubric:
        tops = {c.key: c.max_points for c in self.criteria}
        for number, anchor in enumerate(self.anchors, start=1):
            if set(anchor.scores) != set(tops):
                raise ValueError(f"anchor {number} must score exactly the criteria {list(tops)}")
            for key, score in anchor.scores.items():
                if not 0 <= score <= tops[key]:
                    raise ValueError(f"anchor {number}: {key} {score} is outside 0-{tops[key]}")
            if set(anchor.justification) - set(tops):
                raise ValueError(f"anchor {number}: justification for an unknown criterion")
        return self

    def with_anchors(self, anchors: list[Any]) -> Rubric:
        """This rubric with `anchors` (dicts or Anchor) in place of its own."""
        return Rubric.model_validate({**self.definition(), "anchors": anchors})

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.criteria)

    def definition(self) -> dict[str, Any]:
        # no "anchors" key when there are none: a rubric's content hash stays what it was
        return self.model_dump(mode="json", exclude_defaults=True)

    @property
    def content_sha256(self) -> str:
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def answer_model(self) -> type[BaseModel]:
        """The Pydantic model of the answer the LLM must give for this rubric."""
        return _answer_model(self.criteria)  # the criteria are hashable; anchors hold dicts


# Only keywords that OpenAI's strict structured outputs accept (no string lengths, for one).
def _criterion_answer(criterion: Criterion) -> type[BaseModel]:
    return create_model(
        f"Score_{criterion.key}",
        __config__=ConfigDict(extra="forbid"),
        score=(Annotated[int, Field(ge=0, le=criterion.max_points)], ...),
        justification=(str, ...),
        confidence=(Literal["low", "medium", "high"], ...),
    )


@cache
def _answer_model(rubric_criteria: tuple[Criterion, ...]) -> type[BaseModel]:
    criteria = create_model(
        "CriterionScores",
        __config__=ConfigDict(extra="forbid"),
        **{c.key: (_criterion_answer(c), ...) for c in rubric_criteria},
    )
    return create_model(
        "GradeAnswer",
        __config__=ConfigDict(extra="forbid"),
        criteria=(criteria, ...),
        overall_feedback=(str, ...),
    )


def validation_summary(exc: ValidationError) -> str:
    # include_input=False: an invalid value may quote the essay
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    ]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def parse_rubric(data: Any, source: str) -> Rubric:
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(f"rubric {source} is not valid: {validation_summary(exc)}") from None


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Reads a rubric file (.toml or .json); None gives the default rubric that ships."""
    if path is None:
        text = resources.files("grader").joinpath(f"rubrics/{DEFAULT_RUBRIC}").read_text("utf-8")
        return parse_rubric(tomllib.loads(text), DEFAULT_RUBRIC)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"cannot read rubric {path}: {exc.__class__.__name__}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise RubricError(f"rubric {path} must be a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RubricError(f"rubric {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    return parse_rubric(data, str(path))


def check_essay(essay: str, max_chars: int) -> str:
    """The essay if it can be graded; InvalidEssayError with the reason otherwise."""
    if not essay.strip():
        raise InvalidEssayError("the essay is empty")
    if "\x00" in essay:
        raise InvalidEssayError("the essay contains NUL bytes; it looks like binary data, not text")
    if _UNSTORABLE.search(essay):
        raise InvalidEssayError("the essay is not valid Unicode text")
    if len(essay) > max_chars:
        raise InvalidEssayError(
            f"the essay has {len(essay):,} characters; the limit is {max_chars:,} "
            "(GRADER_MAX_ESSAY_CHARS)"
        )
    return essay


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
