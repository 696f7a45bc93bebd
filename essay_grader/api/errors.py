"""The HTTP API's errors: JSON bodies, `{"error": {"code": ..., "message": ...}}`, with a 4xx for
anything the caller can fix and a status for each GraderError; none echoes the request body (it
holds an essay)."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from grader.errors import (
    ConflictError,
    GraderError,
    InvalidEssayError,
    InvalidInputError,
    NotFoundError,
    RubricError,
    first_line,
)

log = logging.getLogger("grader.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return error_response(exc.status, exc.code, exc.message, **headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(GraderError)
    async def grader_error(request: Request, exc: GraderError) -> JSONResponse:
        for kind, (status, code) in _ERRORS.items():
            if isinstance(exc, kind):
                return error_response(status, code, str(exc))
        log.error("grader error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            500, "server_error", "the grader is misconfigured; see the server log"
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", first_line(exc))
        return error_response(
            503, "unavailable", "the database is unavailable; retry", **{"Retry-After": "5"}
        )
