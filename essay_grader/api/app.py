"""The HTTP API's app factory: the routes, the teachers' review page, the error handlers, the
offline documentation and the request limits, around one grading service."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from essay_grader import review_page
from essay_grader.api.docs import serve_redoc_offline
from essay_grader.api.errors import install_error_handlers
from essay_grader.api.limits import RequestLimits
from essay_grader.api.routes import router
from essay_grader.service import GradingService
from grader.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`; its grading service's connection pool is opened on the first
    request that needs it."""
    # Swagger UI and ReDoc from assets that ship in a package, not from a CDN: /docs and /redoc
    # work offline
    app = FastAPIOffline(
        redoc_url=None,  # ours, below
        title="Essay grader",
        version="1",
        description="Grade essays in the background: POST a submission, POST a grading job, "
        "then poll the job until it is completed.",
    )
    app.state.service = GradingService(settings)
    install_error_handlers(app)
    serve_redoc_offline(app)
    app.include_router(router)
    review_page.install(app, lambda: app.state.service.pool)

    app.add_middleware(
        RequestLimits,
        # an essay of the maximum length, every character escaped in JSON, and room for the rest
        max_body_bytes=settings.max_essay_chars * 6 + 65536,
        body_paths=tuple(
            route.path_regex
            for route in router.routes
            if "POST" in getattr(route, "methods", ()) and route.path.startswith("/v1/")
        ),
    )
    return app
