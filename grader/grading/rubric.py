"""Rubrics (Pydantic) and the structured answer they ask of the model.

A rubric file (TOML or JSON) names criteria with a description and maximum points, and may carry
anchor essays. From a rubric we build the Pydantic model the LLM must answer with (sent as a
strict JSON schema); the code, not the model, checks every score against its bound.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from grader.errors import RubricError
from grader.grading.essay import StorableText

DEFAULT_RUBRIC = "default.toml"


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
        rubrics = resources.files("grader.grading").joinpath("rubrics")
        text = rubrics.joinpath(DEFAULT_RUBRIC).read_text("utf-8")
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
