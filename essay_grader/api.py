"""The HTTP API for web apps: submit an essay, start a grading job, poll its status.

`grader serve` runs it (FastAPI on uvicorn). Every /v1 call needs an API key
(`grader api-key create NAME`) sent as `Authorization: Bearer <key>`; a key sees only its own
submissions and jobs, and another key's are 404, as if they did not exist. Errors are JSON,
`{"error": {"code": ..., "message": ...}}`, with a 4xx for anything the caller can fix; no error
echoes the request body (it holds an essay).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import typing
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import fastapi_offline
import psycopg
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from essay_grader import review_page
from essay_grader.client import GraderClient
from grader.errors import (
    ConflictError,
    GraderError,
    InvalidEssayError,
    InvalidInputError,
    NotFoundError,
    RubricError,
    first_line,
)
from grader.export import parse_since
from grader.grading.essay import MAX_STUDENT_REF_CHARS, StorableText
from grader.grading.grade import Grade
from grader.grading.rubric import Rubric
from grader.jobs import JobStatus
from grader.review import MAX_NOTE_CHARS, REASONS
from grader.settings import Settings
from grader.store import export, review
from grader.store.api_keys import Caller, authenticate
from grader.store.connections import ping

log = logging.getLogger("grader.api")

# --- request and response bodies -----------------------------------------------------------


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


ISO_DATE_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"


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


# --- errors --------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


_ERRORS = {
    NotFoundError: (404, "not_found"),
    InvalidEssayError: (422, "invalid_essay"),
    InvalidInputError: (422, "invalid_input"),
    RubricError: (422, "invalid_rubric"),
    ConflictError: (409, "conflict"),
}
_HTTP_CODES = {
    400: "invalid_body",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
}


def _validation_message(exc: RequestValidationError) -> str:
    # never the input: it may be the essay
    problems = [
        f"{'.'.join(str(p) for p in err['loc'] if p != 'body') or 'body'}: {err['msg']}"
        for err in exc.errors()
    ]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return _error(exc.status, exc.code, exc.message, **headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(GraderError)
    async def grader_error(request: Request, exc: GraderError) -> JSONResponse:
        for kind, (status, code) in _ERRORS.items():
            if isinstance(exc, kind):
                return _error(status, code, str(exc))
        log.error("grader error on %s %s: %s", request.method, request.url.path, exc)
        return _error(500, "server_error", "the grader is misconfigured; see the server log")

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", first_line(exc))
        return _error(
            503, "unavailable", "the database is unavailable; retry", **{"Retry-After": "5"}
        )


class RequestLimits:
    """ASGI middleware: the body of a POST to one of `body_paths` must be JSON and at most
    `max_body_bytes`, or it is refused (415, 413) before anything parses it. Other requests go
    to the router untouched (a method a path does not take is its 405)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, body_paths: tuple[re.Pattern[str], ...]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_paths = body_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not any(path.match(scope["path"]) for path in self.body_paths)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            response = _error(415, "unsupported_media_type", "send the body as application/json")
            await response(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                response = _error(
                    413, "too_large", f"the request body is over {self.max_body_bytes:,} bytes"
                )
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# --- the app -------------------------------------------------------------------------------

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_DOCS_ASSETS = "/static-offline-docs"  # where fastapi_offline serves its files


@cache
def _redoc_bundle() -> str:
    """ReDoc's bundle as fastapi_offline ships it, but for the one address it would still fetch
    from a CDN (Redocly's logo under the menu): that one points at a file served here."""
    bundle = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return bundle.read_text(encoding="utf-8").replace(REDOC_LOGO, f"{_DOCS_ASSETS}/favicon.png")


def _serve_redoc_offline(app: FastAPI) -> None:
    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url="/redoc-assets/redoc.standalone.js",
            redoc_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/redoc-assets/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(
            _redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )


_bearer = HTTPBearer(auto_error=False, description="an API key from `grader api-key create`")


def _client(request: Request) -> GraderClient:
    return request.app.state.client


Client = Annotated[GraderClient, Depends(_client)]


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    client: Client,
) -> Caller:
    """The caller's key; 401 without a live key."""
    if credentials is None:
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'")
    with client.pool.connection() as conn:
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


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`; its client (and connection pool) is built on the first request
    that needs it."""
    # Swagger UI and ReDoc from assets that ship in a package, not from a CDN: /docs and /redoc
    # work offline
    app = FastAPIOffline(
        redoc_url=None,  # ours, below
        title="Essay grader",
        version="1",
        description="Grade essays in the background: POST a submission, POST a grading job, "
        "then poll the job until it is completed.",
    )
    app.state.client = GraderClient(settings)
    _install_error_handlers(app)
    _serve_redoc_offline(app)

    @app.get(
        "/healthz",
        response_model=Health,
        operation_id="healthz",
        responses={503: {"model": ErrorBody}},
    )
    def healthz(client: Client) -> Health:
        """Up, with a reachable database."""
        with client.pool.connection() as conn:
            ping(conn)
        return Health(status="ok", database="ok")

    @app.post(
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
    def create_submission(
        body: SubmissionRequest, key: ApiKey, client: Client
    ) -> SubmissionCreated:
        """Stores an essay to grade; returns its submission id."""
        submission_id = client.submit_essay(
            body.essay, student_ref=body.student_ref, rubric=body.rubric, api_key_id=key
        )
        return SubmissionCreated(submission_id=submission_id)

    @app.post(
        "/v1/grading-jobs",
        status_code=202,
        response_model=GradingJobAccepted,
        operation_id="create_grading_job",
        responses={
            **_ERROR_RESPONSES,
            202: {
                "links": _link("get_grading_job", parameters={"task_id": "$response.body#/task_id"})
            },
        },
    )
    def create_grading_job(
        body: GradingJobRequest, key: ApiKey, client: Client, request: Request, response: Response
    ) -> GradingJobAccepted:
        """Starts grading a submission (or finds the job already grading it) and answers at
        once with the task id and the URL to poll."""
        task_id = client.start_grading_job(
            body.submission_id, rubric=body.rubric, api_key_id=key, mode=body.mode
        )
        status = client.check_grading_status(task_id, api_key_id=key)
        url = str(request.url_for("get_grading_job", task_id=str(task_id)))
        response.headers["Location"] = url
        return GradingJobAccepted(task_id=task_id, status=status.status, status_url=url)

    @app.get(
        "/v1/grading-jobs/{task_id}",
        response_model=GradingJobStatus,
        operation_id="get_grading_job",
        responses=_ERROR_RESPONSES,
    )
    def get_grading_job(task_id: UUID, key: ApiKey, client: Client) -> dict[str, Any]:
        """A job's status, timestamps, attempts and error, and its grade once completed."""
        return client.check_grading_status(task_id, api_key_id=key).to_dict()

    @app.get(
        "/v1/reviews",
        response_model=ReviewQueue,
        operation_id="list_reviews",
        responses=_ERROR_RESPONSES,
    )
    def list_reviews(
        key: ApiKey,
        client: Client,
        state: Literal["needs_review", "reviewed", "auto"] = "needs_review",
        reason: Literal[tuple(REASONS)] | None = None,  # type: ignore[valid-type]
        rubric: Annotated[str | None, Field(max_length=200)] = None,
        cursor: Annotated[str | None, Field(max_length=200)] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Grades of your jobs in a review state (default: waiting for review), oldest first,
        a page at a time (`next_cursor` for the next), with the counts by state and reason."""
        with client.pool.connection() as conn:
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

    @app.post(
        "/v1/grading-jobs/{task_id}/review",
        response_model=ReviewDecision,
        operation_id="review_grading_job",
        responses=_DECISION_RESPONSES,
    )
    def review_grading_job(
        task_id: UUID, body: ReviewRequest, who: ApiCaller, client: Client
    ) -> dict[str, Any]:
        """A teacher's decision on a grade: accept it, or override criterion scores (within the
        rubric's bounds) with a note. The grade becomes `reviewed`, final whatever runs later;
        `version` must be the one you saw (409 if someone decided meanwhile)."""
        with client.pool.connection() as conn:
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

    @app.get(
        "/v1/grades",
        response_model=Gradebook,
        operation_id="list_grades",
        responses=_ERROR_RESPONSES,
    )
    def list_grades(
        key: ApiKey,
        client: Client,
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
        with client.pool.connection() as conn:
            grades, next_cursor = export.page(
                conn, since=start, api_key_id=key, cursor=cursor, limit=limit
            )
        return {"grades": grades, "next_cursor": next_cursor}

    review_page.install(app, lambda: app.state.client.pool)

    app.add_middleware(
        RequestLimits,
        # an essay of the maximum length, every character escaped in JSON, and room for the rest
        max_body_bytes=settings.max_essay_chars * 6 + 65536,
        body_paths=tuple(
            route.path_regex
            for route in app.routes
            if "POST" in getattr(route, "methods", ()) and route.path.startswith("/v1/")
        ),
    )
    return app
