"""The review page for teachers, served by `grader serve` under /review.

Server-rendered HTML, no script, every style inline in the page (nothing fetched from anywhere:
it works offline). A teacher signs in with an API key (`grader api-key create NAME`); the key
is exchanged for a session cookie (HttpOnly, SameSite=Strict, path /review; Secure over HTTPS)
and sees the grades of that key's jobs only. Every form carries the session's CSRF token (the
sign-in form a token of its own, in a cookie and a field: a double submit). Essay text and
every stored value are HTML-escaped; the passages that raised an injection signal are marked.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode
from uuid import UUID

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from grader.errors import ConflictError, InvalidInputError, NotFoundError
from grader.quality.injection import flagged_passages
from grader.review import MAX_NOTE_CHARS, REASONS, parse_scores
from grader.store import api_keys, review
from grader.store.jobs import parse_uuid

SESSION_COOKIE = "grader_session"
SIGN_IN_COOKIE = "grader_sign_in"  # the sign-in form's CSRF token (double submit)
MAX_FORM_BYTES = 64 * 1024
PAGE_SIZE = 50

CSS = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em;
color:#1d1d1d;line-height:1.45}
header{display:flex;justify-content:space-between;align-items:center;
border-bottom:1px solid #ccc;margin-bottom:1em}
a{color:#0b57d0}a:focus,button:focus,input:focus,select:focus,textarea:focus{
outline:3px solid #f2a900;outline-offset:1px}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}
.essay{white-space:pre-wrap;background:#fafafa;border:1px solid #ddd;padding:1em;
font-family:Georgia,serif}
mark{background:#ffd54f}
.reason{display:inline-block;background:#fdecea;border:1px solid #e0a39b;border-radius:3px;
padding:0 6px;margin:0 4px 2px 0;font-size:13px}
.ok{background:#e6f4ea;border:1px solid #8bc49a;padding:.6em 1em}
.error{background:#fdecea;border:1px solid #e0a39b;padding:.6em 1em}
.simulated{background:#fff3cd;border:2px solid #c9a227;padding:.5em 1em;font-weight:bold}
form.inline{display:inline}
fieldset{border:1px solid #ccc;margin:1em 0}
input[type=number]{width:4em}
nav.pages a{margin-right:1em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, who: str | None = None, csrf: str | None = None) -> str:
    account = ""
    if who:
        account = (
            f'<form class="inline" method="post" action="/review/sign-out">'
            f'<input type="hidden" name="csrf_token" value="{_e(csrf)}">'
            f"signed in as {_e(who)} <button>Sign out</button></form>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Essay grader</title><style>{CSS}</style>"
        # no favicon request: the page asks nothing of any server but its own HTML
        '<link rel="icon" href="data:,"></head><body>'
        f'<header><p><a href="/review">Review queue</a></p><div>{account}</div></header>'
        f"<main>{body}</main></body></html>"
    )


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; form-action 'self'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
        },
    )


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError("the form is too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInputError("the form is not UTF-8") from None
    return {k: v[-1] for k, v in fields.items()}


def _highlight(essay: str) -> str:
    out, last = [], 0
    for start, end in flagged_passages(essay):
        out += [_e(essay[last:start]), f"<mark>{_e(essay[start:end])}</mark>"]
        last = end
    out.append(_e(essay[last:]))
    return "".join(out)


def _reasons(reasons: list[dict[str, Any]]) -> str:
    return "".join(
        f'<span class="reason">{_e(REASONS.get(r["reason"], r["reason"]))}</span>' for r in reasons
    )


def _passages(passages: list[dict[str, str]]) -> str:
    items = "".join(f"<li>{_e(p['kind'])}: <q>{_e(p['text'])}</q></li>" for p in passages)
    return f"<br>Passages set aside:<ul>{items}</ul>" if items else ""


def _detail(reason: dict[str, Any]) -> str:
    """A reason's evidence for a person: the checks of grader/recheck.py spelled out, the
    others as they are stored."""
    detail, kind = reason["detail"], reason["reason"]
    if kind == "regrade_differs":
        scores = ", ".join(f"{_e(k)} {a} → {b}" for k, (a, b) in detail["criteria"].items())
        return (
            f"graded again without the passages below: {detail['regrade_total']}/"
            f"{detail['max_score']}, stored {detail['total']}/{detail['max_score']} (a person "
            f"looks from {detail['threshold_points']} points lower, or when full marks are not "
            f"confirmed: {_e(', '.join(detail['full_marks_not_confirmed']) or 'none')}); {scores}"
            + _passages(detail["passages"])
        )
    if kind == "recheck_failed":
        return f"the regrade failed: {_e(detail['error'])}" + _passages(detail["passages"])
    if kind == "justification_mentions_instructions":
        return "; ".join(f"{_e(d['where'])}: <q>{_e(d['text'])}</q>" for d in detail)
    return _e(detail)


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
        message = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
        body = (
            "<h1>Sign in to review grades</h1>"
            f"{message}"
            '<form method="post" action="/review/sign-in">'
            f'<input type="hidden" name="csrf_token" value="{token}">'
            '<p><label for="key">API key</label><br>'
            '<input id="key" name="key" type="password" size="50" autocomplete="off" '
            "required autofocus></p>"
            "<p><button>Sign in</button></p></form>"
            "<p>Ask your administrator for a key (<code>grader api-key create NAME</code>). "
            "You will see the grades of that key's essays.</p>"
        )
        response = _html(_page("Sign in", body), 401 if error else 200)
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
            return _html(
                _page(
                    "Refused",
                    '<p class="error">The form expired; '
                    '<a href="/review/sign-in">sign in again</a>.</p>',
                ),
                403,
            )
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
            return _html(_page("Refused", '<p class="error">Bad form token.</p>'), 403)
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
            return _html(_page("Review queue", f'<p class="error">{_e(exc)}</p>'), 422)
        states = {"needs_review": "Needs review", "reviewed": "Reviewed", "auto": "Auto"}

        def tab(key: str, label: str) -> str:
            label += f" ({counts[key]:,})" if key in counts else ""  # auto grades: uncounted
            if key == state:
                return f"<strong>{label}</strong>"
            return f'<a href="/review?{urlencode({"state": key})}">{label}</a>'

        tabs = " · ".join(tab(key, label) for key, label in states.items())
        options = "".join(
            f'<option value="{key}"{" selected" if key == reason else ""}>{_e(words)} '
            f"({counts['by_reason'][key]:,})</option>"
            for key, words in REASONS.items()
        )
        filters = (
            '<form method="get" action="/review">'
            f'<input type="hidden" name="state" value="{_e(state)}">'
            '<label for="reason">Reason</label> <select id="reason" name="reason">'
            f'<option value="">any</option>{options}</select> <button>Filter</button></form>'
        )
        lines = "".join(
            "<tr>"
            f'<td><a href="/review/grade/{r["task_id"]}">{_e(r["student_ref"] or "(no ref)")}</a>'
            f"</td><td>{_e(r['rubric'])}</td>"
            f'<td class="num">{r["total_score"]}/{r["max_score"]}</td>'
            f"<td>{_reasons(r['review_reasons']) or _e(r['reviewed_by'] or '')}</td>"
            f"<td>{r['created_at']:%Y-%m-%d %H:%M}</td></tr>"
            for r in rows
        )
        table = (
            "<table><thead><tr><th>Student</th><th>Rubric</th><th class=num>Score</th>"
            f"<th>Why / by whom</th><th>Graded (UTC)</th></tr></thead><tbody>{lines}</tbody>"
            "</table>"
            if rows
            else "<p>Nothing here.</p>"
        )
        pages = '<nav class="pages">'
        if cursor:
            first = urlencode({"state": state, **({"reason": reason} if reason else {})})
            pages += f'<a href="/review?{first}">First page</a>'
        if next_cursor:
            more = urlencode(
                {"state": state, **({"reason": reason} if reason else {}), "cursor": next_cursor}
            )
            pages += f'<a href="/review?{more}" rel="next">Next page</a>'
        pages += "</nav>"
        body = f"<h1>Review queue</h1><p>{tabs}</p>{filters}{table}{pages}"
        return _html(_page("Review queue", body, session.caller.name, session.csrf_token))

    def grade_page(
        session: api_keys.Session, task_id: UUID, message: str = "", status: int = 200
    ) -> Response:
        with pool().connection() as conn:
            item = review.detail(conn, task_id, session.caller.key_id)
        simulated = (
            '<p class="simulated" role="note">SIMULATED: this grade came from the built-in '
            "model simulator, not a real model.</p>"
            if item["model"].startswith("simulated:")
            else ""
        )
        rows = "".join(
            f"<tr><td>{_e(c.get('name', c['key']))}</td>"
            f'<td class="num">{c["score"]}/{c["max_points"]}</td>'
            f"<td>{_e(c.get('justification', ''))}</td><td>{_e(c.get('confidence') or '')}"
            + (f" (samples {_e(', '.join(map(str, c['samples'])))})" if c.get("samples") else "")
            + "</td></tr>"
            for c in item["criteria"]
        )
        reasons = "".join(
            f"<li>{_e(REASONS.get(r['reason'], r['reason']))}: {_detail(r)}</li>"
            for r in item["review_reasons"]
        )
        csrf = f'<input type="hidden" name="csrf_token" value="{_e(session.csrf_token)}">'
        version = f'<input type="hidden" name="version" value="{item["version"]}">'
        inputs = "".join(
            f'<label for="score_{_e(c["key"])}">{_e(c.get("name", c["key"]))}</label> '
            f'<input id="score_{_e(c["key"])}" name="score_{_e(c["key"])}" type="number" '
            f'min="0" max="{c["max_points"]}" step="1" value="{c["score"]}"> '
            f"/ {c['max_points']}<br>"
            for c in item["criteria"]
        )
        history = "".join(
            f"<tr><td>{h['decided_at']:%Y-%m-%d %H:%M:%S}</td><td>{_e(h['decided_by'])}</td>"
            f"<td>{_e(h['action'])}</td><td>{_e(h['before'])}</td><td>{_e(h['after'])}</td>"
            f"<td>{_e(h['note'])}</td></tr>"
            for h in item["history"]
        )
        action = f"/review/grade/{item['task_id']}"
        body = (
            f"<h1>{_e(item['student_ref'] or 'Essay')}: {item['total_score']}/"
            f"{item['max_score']}</h1>{message}{simulated}"
            f"<p>Rubric {_e(item['rubric'])} · state <strong>{_e(item['review_state'])}"
            f"</strong> · version {item['version']}"
            + (f" · reviewed by {_e(item['reviewed_by'])}" if item["reviewed_by"] else "")
            + "</p>"
            + (f"<h2>Why it was flagged</h2><ul>{reasons}</ul>" if reasons else "")
            + "<h2>Essay</h2><p>Highlighted: passages that seem to address the grader.</p>"
            f'<div class="essay">{_highlight(item["essay"])}</div>'
            "<h2>Scores</h2><table><thead><tr><th>Criterion</th><th class=num>Score</th>"
            f"<th>Justification</th><th>Model confidence</th></tr></thead><tbody>{rows}"
            f"</tbody></table><p><strong>Feedback:</strong> {_e(item['feedback'])}</p>"
            f'<h2>Your decision</h2><form method="post" action="{action}">{csrf}{version}'
            '<input type="hidden" name="action" value="accept">'
            "<button>Accept as it is</button></form>"
            f'<form method="post" action="{action}"><fieldset><legend>Override scores'
            f"</legend>{csrf}{version}"
            f'<input type="hidden" name="action" value="override">{inputs}'
            '<label for="note">Note</label><br><textarea id="note" name="note" rows="3" '
            f'cols="60" maxlength="{MAX_NOTE_CHARS}"></textarea><br>'
            "<button>Save override</button></fieldset></form>"
            "<h2>History</h2>"
            + (
                "<table><thead><tr><th>When (UTC)</th><th>Who</th><th>Decision</th>"
                f"<th>Before</th><th>After</th><th>Note</th></tr></thead><tbody>{history}"
                "</tbody></table>"
                if history
                else "<p>No decision yet.</p>"
            )
        )
        return _html(_page("Grade", body, session.caller.name, session.csrf_token), status)

    @app.get("/review/grade/{task_id}", include_in_schema=False)
    def grade_view(request: Request, task_id: str, done: str | None = None) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in()
        message = '<p class="ok" role="status">Saved.</p>' if done else ""
        try:
            return grade_page(session, parse_uuid(task_id, "task"), message)
        except NotFoundError as exc:
            return _html(_page("Not found", f'<p class="error">{_e(exc)}</p>'), 404)

    @app.post("/review/grade/{task_id}", include_in_schema=False)
    async def decide(request: Request, task_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in()
        try:
            task = parse_uuid(task_id, "task")
        except NotFoundError as exc:
            return _html(_page("Not found", f'<p class="error">{_e(exc)}</p>'), 404)
        try:
            form = await _form(request)
            if not secrets.compare_digest(form.get("csrf_token", ""), session.csrf_token):
                return _html(
                    _page(
                        "Refused",
                        '<p class="error">Bad form token: reload the page and try again.</p>',
                    ),
                    403,
                )
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
            return _html(_page("Not found", f'<p class="error">{_e(exc)}</p>'), 404)
        except ConflictError as exc:
            message = (
                f'<p class="error" role="alert">Not saved: {_e(exc)}. The page now shows '
                "the current grade.</p>"
            )
            return grade_page(session, task, message, 409)
        except InvalidInputError as exc:
            message = f'<p class="error" role="alert">Not saved: {_e(exc)}</p>'
            return grade_page(session, task, message, 422)
        return RedirectResponse(f"/review/grade/{task}?done=1", status_code=303)
