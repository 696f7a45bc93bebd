"""The HTTP API for web apps: submit an essay, start a grading job, poll its status.

`grader serve` runs it (FastAPI on uvicorn). Every /v1 call needs an API key
(`grader api-key create NAME`) sent as `Authorization: Bearer <key>`; a key sees only its own
submissions and jobs, and another key's are 404, as if they did not exist. Errors are JSON,
`{"error": {"code": ..., "message": ...}}`, with a 4xx for anything the caller can fix; no error
echoes the request body (it holds an essay).

The package: app (the factory, `create_app`), schemas (request and response bodies), routes,
errors, limits (the body size and type checks) and docs (ReDoc offline).
"""

from essay_grader.api.app import create_app

__all__ = ["create_app"]
