"""The HTTP API end to end: uvicorn on loopback, real PostgreSQL, real Prefect flows, and the
model simulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
import pytest

from flows.grading import grade_pending
from grader.store import api_keys

ESSAY = (
    "Libraries still matter.\n\nA library is a quiet place to work, a free source of books, and "
    "a meeting point for a town. Closing them saves little and costs a lot."
)


def _key(conn: psycopg.Connection, name: str = "web app") -> str:
    return api_keys.create_key(conn, name)[0]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(http: httpx.Client, key: str, essay: str = ESSAY, **extra) -> str:
    response = http.post("/v1/submissions", json={"essay": essay, **extra}, headers=_auth(key))
    assert response.status_code == 201, response.text
    return response.json()["submission_id"]


def _run_worker(limit: int = 10) -> dict[str, int]:
    return asyncio.run(grade_pending(limit, 4))


def test_submit_grade_and_poll_until_completed(api: str, conn: psycopg.Connection) -> None:
    key = _key(conn)
    with httpx.Client(base_url=api, timeout=10) as http:
        submission_id = _submit(http, key, student_ref="student-4411")
        accepted = http.post(
            "/v1/grading-jobs", json={"submission_id": submission_id}, headers=_auth(key)
        )
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["status"] == "pending"
        assert body["status_url"] == f"{api}/v1/grading-jobs/{body['task_id']}"
        assert accepted.headers["location"] == body["status_url"]

        # the same request again: the same job (idempotent trigger)
        again = http.post(
            "/v1/grading-jobs", json={"submission_id": submission_id}, headers=_auth(key)
        )
        assert again.json()["task_id"] == body["task_id"]

        worker = threading.Thread(target=_run_worker)
        worker.start()
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            status = http.get(body["status_url"], headers=_auth(key)).json()
            seen.append(status["status"])
            if status["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        worker.join()
    assert status["status"] == "completed", status
    assert status["submission_id"] == submission_id
    grade = status["grade"]
    assert 0 <= grade["total_score"] <= grade["max_score"]
    assert grade["simulated"] is True
    assert grade["possible_prompt_injection"] is False
    assert {c["key"] for c in grade["criteria"]} == {
        "thesis",
        "evidence",
        "organization",
        "language",
    }
    assert status["completed_at"] >= status["started_at"] >= status["created_at"]
    assert seen[0] in ("pending", "processing")


def test_requests_without_a_live_key_get_401(api: str, conn: psycopg.Connection) -> None:
    key = _key(conn)
    with httpx.Client(base_url=api, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer gk_wrong"}, {"Authorization": "Basic x"}):
            response = http.post("/v1/submissions", json={"essay": ESSAY}, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        submission_id = _submit(http, key)
        api_keys.revoke_key(conn, key[:10])
        response = http.post(
            "/v1/grading-jobs", json={"submission_id": submission_id}, headers=_auth(key)
        )
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]


def test_another_keys_jobs_are_404(api: str, conn: psycopg.Connection) -> None:
    alice, bob = _key(conn, "alice"), _key(conn, "bob")
    with httpx.Client(base_url=api, timeout=10) as http:
        submission_id = _submit(http, alice)
        task_id = http.post(
            "/v1/grading-jobs", json={"submission_id": submission_id}, headers=_auth(alice)
        ).json()["task_id"]
        # bob can neither see alice's job nor grade her submission
        response = http.get(f"/v1/grading-jobs/{task_id}", headers=_auth(bob))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        response = http.post(
            "/v1/grading-jobs", json={"submission_id": submission_id}, headers=_auth(bob)
        )
        assert response.status_code == 404
        # and a job that does not exist looks the same
        unknown = http.get(f"/v1/grading-jobs/{uuid4()}", headers=_auth(bob))
        assert unknown.status_code == 404
        assert http.get(f"/v1/grading-jobs/{task_id}", headers=_auth(alice)).status_code == 200


def test_bad_requests_get_a_json_4xx_and_store_nothing(api: str, conn: psycopg.Connection) -> None:
    key = _key(conn)
    auth = _auth(key)
    with httpx.Client(base_url=api, timeout=30) as http:
        cases = [
            # (request, status, error code)
            (
                http.build_request("GET", "/v1/grading-jobs/not-a-uuid", headers=auth),
                422,
                "invalid_request",
            ),
            (
                http.build_request("POST", "/v1/submissions", json={"essay": ""}, headers=auth),
                422,
                "invalid_request",
            ),
            (
                http.build_request("POST", "/v1/submissions", json={"essay": "   "}, headers=auth),
                422,
                "invalid_essay",
            ),
            (
                http.build_request(
                    "POST", "/v1/submissions", json={"essay": "x" * 100_001}, headers=auth
                ),
                422,
                "invalid_essay",
            ),
            (
                http.build_request(
                    "POST", "/v1/submissions", json={"essay": ESSAY, "grade": 10}, headers=auth
                ),
                422,
                "invalid_request",
            ),
            (
                http.build_request("POST", "/v1/submissions", json=["essay"], headers=auth),
                422,
                "invalid_request",
            ),
            (
                http.build_request(
                    "POST",
                    "/v1/submissions",
                    content=b"{not json",
                    headers={**auth, "Content-Type": "application/json"},
                ),
                422,
                "invalid_request",
            ),
            (
                http.build_request(
                    "POST",
                    "/v1/submissions",
                    content=ESSAY.encode(),
                    headers={**auth, "Content-Type": "text/plain"},
                ),
                415,
                "unsupported_media_type",
            ),
            (
                http.build_request(
                    "POST", "/v1/submissions", json={"essay": "x" * 700_000}, headers=auth
                ),
                413,
                "too_large",
            ),
            (
                http.build_request(
                    "POST",
                    "/v1/submissions",
                    json={"essay": ESSAY, "rubric": {"name": "r", "criteria": []}},
                    headers=auth,
                ),
                422,
                "invalid_request",
            ),
            (
                http.build_request(
                    "POST", "/v1/grading-jobs", json={"submission_id": "42"}, headers=auth
                ),
                422,
                "invalid_request",
            ),
            (
                http.build_request(
                    "POST", "/v1/grading-jobs", json={"submission_id": str(uuid4())}, headers=auth
                ),
                404,
                "not_found",
            ),
            (
                http.build_request("DELETE", "/v1/submissions", headers=auth),
                405,
                "method_not_allowed",
            ),
            # a method a path does not take is 405, whatever the body's content type
            (
                http.build_request("PUT", f"/v1/grading-jobs/{uuid4()}", headers=auth),
                405,
                "method_not_allowed",
            ),
            (http.build_request("POST", "/healthz", headers=auth), 405, "method_not_allowed"),
            (http.build_request("GET", "/v1/nothing-here", headers=auth), 404, "not_found"),
        ]
        for request, status, code in cases:
            response = http.send(request)
            assert response.status_code == status, (request.method, request.url, response.text)
            assert response.json()["error"]["code"] == code, response.text
            # an error never echoes the essay
            assert ESSAY[:20] not in response.text
    assert conn.execute("SELECT count(*) AS n FROM grader.submissions").fetchone()["n"] == 0


def test_chunked_body_over_the_limit_is_413(api: str, conn: psycopg.Connection) -> None:
    key = _key(conn)

    def chunks() -> Iterator[bytes]:
        yield b'{"essay": "'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"}'

    with httpx.Client(base_url=api, timeout=30) as http:
        response = http.post(
            "/v1/submissions",
            content=chunks(),
            headers={**_auth(key), "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_healthz_and_openapi(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok", "database": "ok"}
        spec = http.get("/openapi.json").json()
    assert {"/v1/submissions", "/v1/grading-jobs", "/v1/grading-jobs/{task_id}"} <= set(
        spec["paths"]
    )
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_flow(api: str, conn: psycopg.Connection) -> None:
    """The README's curl commands, as a web app would run them: POST, POST, poll GET."""
    key = _key(conn)

    def curl(*args: str) -> dict:
        out = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-H", f"Authorization: Bearer {key}", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return json.loads(out)

    submission = curl(
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"essay": ESSAY, "student_ref": "s-17"}),
        f"{api}/v1/submissions",
    )
    job = curl(
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"submission_id": submission["submission_id"]}),
        f"{api}/v1/grading-jobs",
    )
    assert _run_worker()["completed"] == 1
    status = curl(job["status_url"])
    assert status["status"] == "completed"
    assert status["grade"]["max_score"] > 0


def test_fuzzing_the_served_openapi_document_finds_no_server_error(
    api: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """schemathesis generates valid and invalid requests from /openapi.json, with and without a
    key; no answer may be a 5xx, every answer must match the documented status codes, content
    types and schemas, invalid data and undeclared methods must be refused, and a request
    without a key must be. (All checks but positive_data_acceptance: a rubric's criterion keys
    must be unique, which JSON Schema cannot say, so schema-valid rubrics can get a 422.)"""
    key = _key(conn)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    for headers in (["-H", f"Authorization: Bearer {key}"], []):
        result = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{api}/openapi.json",
                *headers,
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "40",
                "--seed",
                "7",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        junit = (tmp_path / "junit.xml").read_text()
        assert 'tests="' in junit and "<failure" not in junit
