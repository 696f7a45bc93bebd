"""The API's documentation pages, offline: ReDoc from the bundle fastapi_offline ships (Swagger
UI at /docs is fastapi_offline's own)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_DOCS_ASSETS = "/static-offline-docs"  # where fastapi_offline serves its files


@cache
def _redoc_bundle() -> str:
    """ReDoc's bundle as fastapi_offline ships it, but for the one address it would still fetch
    from a CDN (Redocly's logo under the menu): that one points at a file served here."""
    bundle = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return bundle.read_text(encoding="utf-8").replace(REDOC_LOGO, f"{_DOCS_ASSETS}/favicon.png")


def serve_redoc_offline(app: FastAPI) -> None:
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
