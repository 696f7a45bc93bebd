"""The HTTP API's request and response bodies (Pydantic models): what the OpenAPI document
describes. The job and grade bodies are made from the store's record dataclasses, so that the API
serves what the store reads."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from grader.grading.essay import MAX_STUDENT_REF_CHARS, StorableText
from grader.grading.grade import Grade
from grader.grading.rubric import Rubric
from grader.jobs import JobStatus
from grader.review import MAX_NOTE_CHARS


def _without_anchors(schema: dict[str, Any]) -> None:
    schema["properties"].pop("anchors", None)


class SubmittedRubric(Rubric):
    """A rubric sent with a request: name and criteria. Anchor essays (scored examples for the
    prompt) are given to evaluation runs (`grader evaluate run --anchors`), not over HTTP: a
    request body stays under its size limit."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="Rubric", json_schema_extra=_without_anchors
    )

    @field_validator("anchors")
    @classmethod
    def _none(cls, anchors: tuple) -> tuple:
        if anchors:
            raise ValueError("anchor essays are not accepted over HTTP")
        return anchors


class SubmissionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    essay: Annotated[str, Field(min_length=1, description="the essay, UTF-8 text")]
    student_ref: Annotated[
        StorableText | None,
        Field(
            max_length=MAX_STUDENT_REF_CHARS,
            description="your reference for the student; never sent to the model, never logged",
        ),
    ] = None
    rubric: Annotated[
        SubmittedRubric | None,
        Field(description="grade by this rubric instead of the default one"),
    ] = None


class SubmissionCreated(BaseModel):
    submission_id: UUID


class GradingJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    submission_id: UUID
    rubric: Annotated[
        SubmittedRubric | None,
        Field(description="grade by this rubric instead of the submission's"),
    ] = None
    mode: Annotated[
        Literal["now", "batch"],
        Field(
            description="now: graded at once; batch: in the provider's next batch, at half "
            "the price, within 24 hours"
        ),
    ] = "now"


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "override"]
    scores: Annotated[
        dict[str, int], Field(description="override: new scores by criterion key")
    ] = {}
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = ""
    version: Annotated[
        int, Field(ge=1, description="the grade version you reviewed (409 if it changed)")
    ]


class ReviewDecision(BaseModel):
    task_id: UUID
    action: str
    version: int
    before: dict[str, int]
    after: dict[str, int]
    total_score: int
    reviewed_by: str


class ReviewItem(BaseModel):
    task_id: UUID
    grade_id: UUID
    total_score: int
    max_score: int
    review_state: str
    review_reasons: list[dict[str, Any]]
    created_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    model: str
    student_ref: str | None
    rubric: str


class ReviewCounts(BaseModel):
    needs_review: int
    reviewed: int
    by_reason: dict[str, int]


class GradebookRow(BaseModel):
    student_ref: str | None
    submission_id: UUID
    task_id: UUID
    total_score: int
    max_score: int
    review_state: str
    reviewed_by: str | None
    graded_at: datetime
    reviewed_at: datetime | None
    rubric: str
    rubric_version: str
    model: str
    simulated: bool
    scores: dict[str, int]


class Gradebook(BaseModel):
    grades: list[GradebookRow]
    next_cursor: str | None


class ReviewQueue(BaseModel):
    grades: list[ReviewItem]
    next_cursor: str | None
    counts: ReviewCounts


class GradingJobAccepted(BaseModel):
    task_id: UUID
    status: str
    status_url: str


def response_model(record: type, **replaced: Any) -> type[BaseModel]:
    """The response model of a record dataclass: its fields and its computed values (with the
    types their properties return), so that the API serves what the store reads, and its
    OpenAPI document says so. `replaced` gives a field another type (a nested response model)."""
    hints = typing.get_type_hints(record)
    fields = {
        f.name: (replaced.get(f.name, hints[f.name]), ...) for f in dataclasses.fields(record)
    }
    for name in record.COMPUTED:
        fields[name] = (typing.get_type_hints(getattr(record, name).fget)["return"], ...)
    return create_model(record.__name__, __doc__=record.__doc__, **fields)


GradeBody = response_model(Grade)
GradingJobStatus = response_model(JobStatus, grade=GradeBody | None)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    database: str
