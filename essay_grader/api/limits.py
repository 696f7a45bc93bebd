"""The HTTP API's request limits, checked before anything parses a body."""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from essay_grader.api.errors import error_response


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
            response = error_response(
                415, "unsupported_media_type", "send the body as application/json"
            )
            await response(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                response = error_response(
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
