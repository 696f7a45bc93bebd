"""The review page for teachers, served by `grader serve` under /review.

Server-rendered HTML from the Jinja2 templates in essay_grader/templates, no script, every style
inline in the page (nothing fetched from anywhere: it works offline). A teacher signs in with an
API key (`grader api-key create NAME`); the key is exchanged for a session cookie (HttpOnly,
SameSite=Strict, path /review; Secure over HTTPS) and sees the grades of that key's jobs only.
Every form carries the session's CSRF token (the sign-in form a token of its own, in a cookie and
a field: a double submit). The templates autoescape: essay text and every stored value reach the
page as text; the passages that raised an injection signal are marked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from grader.errors import ConflictError, InvalidInputError, NotFoundError
from grader.quality.injection import flagged_passages
from grader.review import MAX_NOTE_CHARS, REASONS, parse_scores
from grader.store import api_keys, review
from grader.store.jobs import parse_uuid

SESSION_COOKIE = "grader_session"
SIGN_IN_COOKIE = "grader_sign_in"  # the sign-in form's CSRF token (double submit)
MAX_FORM_BYTES = 64 * 1024
PAGE_SIZE = 50

_templates = Environment(
    loader=PackageLoader("essay_grader", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a name the view forgot fails loudly, not as an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals["reasons"] = REASONS


def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(
        _templates.get_template(template).render({"session": None, **context}),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; form-action 'self'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
        },
    )


def _message(title: str, message: str, status: int, sign_in_again: bool = False) -> HTMLResponse:
    return _html("message.html", status, title=title, message=message, sign_in_again=sign_in_again)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError("the form is too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInputError("the form is not UTF-8") from None
    return {k: v[-1] for k, v in fields.items()}


def _essay_parts(essay: str) -> list[tuple[str, bool]]:
    """The essay as (text, flagged) parts: flagged for the passages that seem to address the
    grader."""
    parts, last = [], 0
    for start, end in flagged_passages(essay):
        parts += [(essay[last:start], False), (essay[start:end], True)]
        last = end
    parts.append((essay[last:], False))
    return parts


def install(app: FastAPI, pool: Callable[[], Any]) -> None:
    """Adds the review page's routes to `app`; `pool()` gives the database pool."""

    def session_of(request: Request) -> api_keys.Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        with pool().connection() as conn:
            return api_keys.find_session(conn, token)

    def to_sign_in() -> RedirectResponse:
        return RedirectResponse("/review/sign-in", status_code=303)

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    @app.get("/review/sign-in", include_in_schema=False)
    def sign_in_page(request: Request, error: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        response = _html(
            "sign_in.html", 401 if error else 200, title="Sign in", error=error, csrf_token=token
        )
        response.set_cookie(
            SIGN_IN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/review",
            secure=secure(request),
            max_age=3600,
        )
        return response

    @app.post("/review/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(SIGN_IN_COOKIE)
        if not expected or not secrets.compare_digest(form.get("csrf_token", ""), expected):
            return _message("Refused", "The form expired", 403, sign_in_again=True)
        with pool().connection() as conn:
            caller = api_keys.authenticate(conn, form.get("key", "").strip())
            if caller is None:
                return sign_in_page(request, "Unknown or revoked API key.")
            token, _ = api_keys.open_session(conn, caller)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/review",
            secure=secure(request),
            max_age=api_keys.SESSION_SECONDS,
        )
        response.delete_cookie(SIGN_IN_COOKIE, path="/review")
        return response

    @app.post("/review/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        session = session_of(request)
        form = await _form(request)
        if session is None:
            return to_sign_in()
        if not secrets.compare_digest(form.get("csrf_token", ""), session.csrf_token):
            return _message("Refused", "Bad form token.", 403)
        with pool().connection() as conn:
            api_keys.close_session(conn, request.cookies[SESSION_COOKIE])
        response = to_sign_in()
        response.delete_cookie(SESSION_COOKIE, path="/review")
        return response

    @app.get("/review", include_in_schema=False)
    def queue_page(
        request: Request,
        state: str = "needs_review",
        reason: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in()
        reason = reason or None
        try:
            with pool().connection() as conn:
                rows, next_cursor = review.queue(
                    conn,
                    state=state,
                    reason=reason,
                    api_key_id=session.caller.key_id,
                    cursor=cursor,
                    limit=PAGE_SIZE,
                )
                counts = review.counts(conn, session.caller.key_id)
        except InvalidInputError as exc:
            return _message("Review queue", str(exc), 422)
        states = {"needs_review": "Needs review", "reviewed": "Reviewed", "auto": "Auto"}
        tabs = [
            {
                # auto grades: uncounted
                "label": label + (f" ({counts[key]:,})" if key in counts else ""),
                "current": key == state,
                "url": "/review?" + urlencode({"state": key}),
            }
            for key, label in states.items()
        ]
        filters = {"state": state, **({"reason": reason} if reason else {})}
        return _html(
            "queue.html",
            title="Review queue",
            session=session,
            tabs=tabs,
            state=state,
            reason=reason,
            counts=counts,
            rows=rows,
            first_url="/review?" + urlencode(filters) if cursor else None,
            next_url=(
                "/review?" + urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
            ),
        )

    def grade_page(
        session: api_keys.Session,
        task_id: UUID,
        notice: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        with pool().connection() as conn:
            item = review.detail(conn, task_id, session.caller.key_id)
        return _html(
            "grade.html",
            status,
            title="Grade",
            session=session,
            item=item,
            essay=_essay_parts(item["essay"]),
            notice=notice,
            action=f"/review/grade/{item['task_id']}",
            max_note_chars=MAX_NOTE_CHARS,
        )

    @app.get("/review/grade/{task_id}", include_in_schema=False)
    def grade_view(request: Request, task_id: str, done: str | None = None) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in()
        notice = {"kind": "ok", "text": "Saved."} if done else None
        try:
            return grade_page(session, parse_uuid(task_id, "task"), notice)
        except NotFoundError as exc:
            return _message("Not found", str(exc), 404)

    @app.post("/review/grade/{task_id}", include_in_schema=False)
    async def decide(request: Request, task_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in()
        try:
            task = parse_uuid(task_id, "task")
        except NotFoundError as exc:
            return _message("Not found", str(exc), 404)
        try:
            form = await _form(request)
            if not secrets.compare_digest(form.get("csrf_token", ""), session.csrf_token):
                return _message("Refused", "Bad form token: reload the page and try again.", 403)
            action = form.get("action", "")
            try:
                version = int(form.get("version", ""))
            except ValueError:
                raise InvalidInputError("the form has no grade version") from None
            scores = {}
            if action == "override":
                scores = parse_scores(
                    [f"{k[6:]}={v}" for k, v in form.items() if k.startswith("score_")]
                )
                with pool().connection() as conn:
                    current = review.detail(conn, task, session.caller.key_id)
                unchanged = {c["key"]: c["score"] for c in current["criteria"]}
                scores = {k: v for k, v in scores.items() if unchanged.get(k) != v}
                if not scores:
                    raise InvalidInputError(
                        "change at least one score to override, or accept the grade as it is"
                    )
            with pool().connection() as conn:
                review.decide(
                    conn,
                    task,
                    action=action,
                    who=session.caller.who,
                    version=version,
                    scores=scores,
                    note=form.get("note", ""),
                    api_key_id=session.caller.key_id,
                )
        except NotFoundError as exc:
            return _message("Not found", str(exc), 404)
        except ConflictError as exc:
            text = f"Not saved: {exc}. The page now shows the current grade."
            return grade_page(session, task, {"kind": "error", "text": text}, 409)
        except InvalidInputError as exc:
            return grade_page(session, task, {"kind": "error", "text": f"Not saved: {exc}"}, 422)
        return RedirectResponse(f"/review/grade/{task}?done=1", status_code=303)
