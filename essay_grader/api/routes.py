"""The HTTP API's routes: /healthz and the /v1 calls (submissions, grading jobs, reviews, the
gradebook), each authenticated by an API key that sees only its own submissions and jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from essay_grader.api.errors import ApiError
from essay_grader.api.schemas import (
    ErrorBody,
    Gradebook,
    GradingJobAccepted,
    GradingJobRequest,
    GradingJobStatus,
    Health,
    ReviewDecision,
    ReviewQueue,
    ReviewRequest,
    SubmissionCreated,
    SubmissionRequest,
)
from essay_grader.service import GradingService
from grader.export import parse_since
from grader.review import REASONS
from grader.store import export, review
from grader.store.api_keys import Caller, authenticate
from grader.store.connections import ping

router = APIRouter()

ISO_DATE_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"

_bearer = HTTPBearer(auto_error=False, description="an API key from `grader api-key create`")


def _service(request: Request) -> GradingService:
    return request.app.state.service


Service = Annotated[GradingService, Depends(_service)]


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    service: Service,
) -> Caller:
    """The caller's key; 401 without a live key."""
    if credentials is None:
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'")
    with service.pool.connection() as conn:
        found = authenticate(conn, credentials.credentials)
    if found is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    return found


def api_key(found: Annotated[Caller, Depends(caller)]) -> UUID:
    return found.key_id


ApiKey = Annotated[UUID, Depends(api_key)]
ApiCaller = Annotated[Caller, Depends(caller)]
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 422)
}
_DECISION_RESPONSES = {**_ERROR_RESPONSES, 409: {"model": ErrorBody}}


def _link(operation_id: str, **values: Any) -> dict[str, Any]:
    """An OpenAPI link: how a client (or a fuzzer) goes on from a response."""
    return {operation_id: {"operationId": operation_id, **values}}


@router.get(
    "/healthz",
    response_model=Health,
    operation_id="healthz",
    responses={503: {"model": ErrorBody}},
)
def healthz(service: Service) -> Health:
    """Up, with a reachable database."""
    with service.pool.connection() as conn:
        ping(conn)
    return Health(status="ok", database="ok")


@router.post(
    "/v1/submissions",
    status_code=201,
    response_model=SubmissionCreated,
    operation_id="create_submission",
    responses={
        **_ERROR_RESPONSES,
        201: {
            "links": _link(
                "create_grading_job",
                requestBody={"submission_id": "$response.body#/submission_id"},
            )
        },
    },
)
def create_submission(body: SubmissionRequest, key: ApiKey, service: Service) -> SubmissionCreated:
    """Stores an essay to grade; returns its submission id."""
    submission_id = service.submit_essay(
        body.essay, student_ref=body.student_ref, rubric=body.rubric, api_key_id=key
    )
    return SubmissionCreated(submission_id=submission_id)


@router.post(
    "/v1/grading-jobs",
    status_code=202,
    response_model=GradingJobAccepted,
    operation_id="create_grading_job",
    responses={
        **_ERROR_RESPONSES,
        202: {"links": _link("get_grading_job", parameters={"task_id": "$response.body#/task_id"})},
    },
)
def create_grading_job(
    body: GradingJobRequest, key: ApiKey, service: Service, request: Request, response: Response
) -> GradingJobAccepted:
    """Starts grading a submission (or finds the job already grading it) and answers at
    once with the task id and the URL to poll."""
    task_id = service.start_grading_job(
        body.submission_id, rubric=body.rubric, api_key_id=key, mode=body.mode
    )
    status = service.check_grading_status(task_id, api_key_id=key)
    url = str(request.url_for("get_grading_job", task_id=str(task_id)))
    response.headers["Location"] = url
    return GradingJobAccepted(task_id=task_id, status=status.status, status_url=url)


@router.get(
    "/v1/grading-jobs/{task_id}",
    response_model=GradingJobStatus,
    operation_id="get_grading_job",
    responses=_ERROR_RESPONSES,
)
def get_grading_job(task_id: UUID, key: ApiKey, service: Service) -> dict[str, Any]:
    """A job's status, timestamps, attempts and error, and its grade once completed."""
    return service.check_grading_status(task_id, api_key_id=key).to_dict()


@router.get(
    "/v1/reviews",
    response_model=ReviewQueue,
    operation_id="list_reviews",
    responses=_ERROR_RESPONSES,
)
def list_reviews(
    key: ApiKey,
    service: Service,
    state: Literal["needs_review", "reviewed", "auto"] = "needs_review",
    reason: Literal[tuple(REASONS)] | None = None,  # type: ignore[valid-type]
    rubric: Annotated[str | None, Field(max_length=200)] = None,
    cursor: Annotated[str | None, Field(max_length=200)] = None,
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Grades of your jobs in a review state (default: waiting for review), oldest first,
    a page at a time (`next_cursor` for the next), with the counts by state and reason."""
    with service.pool.connection() as conn:
        grades, next_cursor = review.queue(
            conn,
            state=state,
            reason=reason,
            rubric=rubric,
            api_key_id=key,
            cursor=cursor,
            limit=limit,
        )
        counts = review.counts(conn, key)
    return {"grades": grades, "next_cursor": next_cursor, "counts": counts}


@router.post(
    "/v1/grading-jobs/{task_id}/review",
    response_model=ReviewDecision,
    operation_id="review_grading_job",
    responses=_DECISION_RESPONSES,
)
def review_grading_job(
    task_id: UUID, body: ReviewRequest, who: ApiCaller, service: Service
) -> dict[str, Any]:
    """A teacher's decision on a grade: accept it, or override criterion scores (within the
    rubric's bounds) with a note. The grade becomes `reviewed`, final whatever runs later;
    `version` must be the one you saw (409 if someone decided meanwhile)."""
    with service.pool.connection() as conn:
        return review.decide(
            conn,
            task_id,
            action=body.action,
            who=who.who,
            version=body.version,
            scores=body.scores,
            note=body.note,
            api_key_id=who.key_id,
        )


@router.get(
    "/v1/grades",
    response_model=Gradebook,
    operation_id="list_grades",
    responses=_ERROR_RESPONSES,
)
def list_grades(
    key: ApiKey,
    service: Service,
    since: Annotated[
        str | None,
        Field(
            pattern=ISO_DATE_TIME,
            description="a date (midnight UTC) or an ISO 8601 date-time",
        ),
    ] = None,
    cursor: Annotated[str | None, Field(max_length=200)] = None,
    limit: Annotated[int, Field(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The gradebook of your jobs: every grade since `since`, oldest first, with scores per
    criterion, review state and reviewer; `next_cursor` for the next page."""
    start = parse_since(since, "since")
    with service.pool.connection() as conn:
        grades, next_cursor = export.page(
            conn, since=start, api_key_id=key, cursor=cursor, limit=limit
        )
    return {"grades": grades, "next_cursor": next_cursor}
