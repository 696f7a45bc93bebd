"""Which model errors are worth retrying (rate limits, 5xx, timeouts, dropped connections), how
long a rate limit asks us to wait, and a one-line description of any failure.
"""

from __future__ import annotations

import openai
import psycopg

from grader.errors import GraderError, first_line

MAX_RETRY_AFTER_SECONDS = 120.0


def retry_after_seconds(exc: openai.APIStatusError) -> float:
    """The wait a 429 asks for (Retry-After or retry-after-ms), capped; 0 when absent."""
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        else:
            seconds = float(headers.get("retry-after", 0))
    except ValueError:
        # an HTTP-date Retry-After: rare from model APIs; the backoff alone covers it
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def is_transient(exc: BaseException) -> bool:
    """True for failures that can succeed on retry: rate limits, 5xx, timeouts, dropped
    connections (to the model or the database). Bad requests, bad credentials and invalid
    essays are not retried."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, psycopg.OperationalError)


def describe_failure(exc: BaseException) -> str:
    """One readable line for error_message; never quotes the essay."""
    if isinstance(exc, GraderError):
        return str(exc)
    if isinstance(exc, openai.APITimeoutError):
        return "the model request timed out (retries exhausted)"
    if isinstance(exc, openai.APIConnectionError):
        return "could not reach the model API (retries exhausted)"
    if isinstance(exc, openai.APIStatusError):
        message = exc.message.splitlines()[0] if exc.message else ""
        kind = "retries exhausted" if is_transient(exc) else "not retried"
        return f"model API error {exc.status_code} ({kind}): {message}"[:500]
    if isinstance(exc, psycopg.Error):
        return f"database error: {first_line(exc)}"[:500]
    return f"unexpected error: {type(exc).__name__}"
