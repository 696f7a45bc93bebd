"""The model simulator, exercised over real HTTP with the official openai client."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel, Field, ValidationError

from grader.llm import response_format
from grader.models import load_rubric
from grader.simulator import (
    FAULTS,
    OVERSCORE,
    LLMSimulator,
    SimulatorConfig,
    parse_fault_rates,
)

ESSAY = "The industrial revolution changed how people worked, mostly for the better."


def _client(sim: LLMSimulator, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="test", max_retries=0, timeout=timeout)


def _ask(client: openai.OpenAI, essay: str = ESSAY, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "You grade essays."},
            {"role": "user", "content": essay},
        ],
        **kwargs,
    )


def _root(sim: LLMSimulator) -> str:
    return sim.base_url.removesuffix("/v1")


def _http(sim: LLMSimulator, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """(status, decoded JSON body) of one plain HTTP request; bytes bodies are sent as is."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(_root(sim) + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _admin(sim: LLMSimulator, method: str, path: str, body: object = None) -> Any:
    status, payload = _http(sim, method, path, body)
    assert status == 200, payload
    return payload


def _raw_exchange(sim: LLMSimulator, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    port = int(sim.base_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """One Content-Length framed response from a keep-alive socket."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection before answering"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += sock.recv(65536)
    return status_line.encode(), headers, rest


# ---- answers


class Criterion(BaseModel):
    name: Literal["argument", "evidence", "style"]
    score: int = Field(ge=1, le=5)
    comment: str


class Grade(BaseModel):
    criteria: list[Criterion] = Field(min_length=2, max_length=4)
    overall: int = Field(ge=0, le=100)
    confidence: float = Field(gt=0, lt=1)
    flagged: bool
    note: str | None


def test_answer_validates_against_requested_schema() -> None:
    # pydantic emits $defs/$ref for the nested model; parse() sends it as a strict json_schema.
    with LLMSimulator().serve_in_thread() as sim:
        client = _client(sim)
        for i in range(5):
            completion = client.chat.completions.parse(
                model="gpt-test",
                messages=[{"role": "user", "content": f"{ESSAY} ({i})"}],
                response_format=Grade,
            )
            grade = Grade.model_validate_json(completion.choices[0].message.content or "")
            assert completion.choices[0].message.parsed == grade
            assert 2 <= len(grade.criteria) <= 4
            # Integers look like plausible grades: in the upper 40-100% of their range.
            assert 40 <= grade.overall <= 100
            assert all(3 <= c.score <= 5 for c in grade.criteria)
            assert all(c.comment.startswith("[simulated] ") for c in grade.criteria)


def test_schema_keywords_are_honoured() -> None:
    schema = {
        "type": "object",
        "properties": {
            "result": {"$ref": "#/definitions/Result"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 50}]},
            "either": {"type": ["null", "string"]},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "tight": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
            "level": {"type": "string", "enum": ["low", "mid", "high"]},
            "nothing": {"type": "null"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
        },
        "required": ["result", "maybe", "either", "ratio", "tight", "level", "nothing", "tags"],
        "definitions": {
            "Result": {
                "type": "object",
                "properties": {"passed": {"type": "boolean"}, "mark": {"type": "integer"}},
                "required": ["passed", "mark"],
            }
        },
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": schema, "strict": True},
    }
    with LLMSimulator().serve_in_thread() as sim:
        answer = json.loads(
            _ask(_client(sim), response_format=response_format).choices[0].message.content
        )
    assert isinstance(answer["result"]["passed"], bool)
    assert 4 <= answer["result"]["mark"] <= 10  # default range 0..10, upper 40-100%
    assert isinstance(answer["maybe"], int) and answer["maybe"] >= 50
    assert answer["either"].startswith("[simulated] ")
    assert 0 < answer["ratio"] < 1
    assert answer["tight"] == 4
    assert answer["level"] in ("low", "mid", "high")
    assert answer["nothing"] is None
    assert len(answer["tags"]) == 4


def test_same_request_gets_same_answer() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "g", "schema": Grade.model_json_schema(), "strict": True},
    }
    with LLMSimulator().serve_in_thread() as sim:
        client = _client(sim)
        first = _ask(client, response_format=response_format).choices[0].message.content
        second = _ask(client, response_format=response_format).choices[0].message.content
        other = _ask(client, "Another essay.", response_format=response_format)
    assert first == second
    assert other.choices[0].message.content != first


def test_plain_and_json_object_answers_say_they_are_simulated() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        client = _client(sim)
        text = _ask(client)
        obj = _ask(client, response_format={"type": "json_object"})
    assert text.choices[0].message.content.startswith("[simulated] ")
    assert text.model == "simulated:gpt-test"
    assert text.system_fingerprint == "grader-simulator"
    assert text.id.startswith("chatcmpl-sim-")
    assert text.choices[0].finish_reason == "stop"
    prompt_chars = len("You grade essays.") + len(ESSAY)
    assert text.usage.prompt_tokens == prompt_chars // 4
    assert text.usage.total_tokens == text.usage.prompt_tokens + text.usage.completion_tokens
    assert any(
        isinstance(v, str) and v.startswith("[simulated] ")
        for v in json.loads(obj.choices[0].message.content).values()
    )


def test_unanswerable_schema_is_400() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with LLMSimulator().serve_in_thread() as sim, pytest.raises(openai.BadRequestError) as exc:
        _ask(_client(sim), response_format=response_format)
    assert "Missing" in exc.value.message


# ---- faults


def test_429_carries_retry_after_header() -> None:
    config = SimulatorConfig(script=["429", "429"], retry_after_seconds=2.5)
    with LLMSimulator(config).serve_in_thread() as sim:
        client = _client(sim)
        with pytest.raises(openai.RateLimitError) as exc:
            _ask(client)
        assert exc.value.response.headers["retry-after"] == "2.5"
        assert exc.value.code == "rate_limit_exceeded"
        assert exc.value.type == "rate_limit_error"
        assert "simulated" in exc.value.message
        sim.config.retry_after_seconds = 3.0
        with pytest.raises(openai.RateLimitError) as exc:
            _ask(client)
        assert exc.value.response.headers["retry-after"] == "3"


def test_500_is_server_error() -> None:
    with (
        LLMSimulator(SimulatorConfig(script=["500"])).serve_in_thread() as sim,
        pytest.raises(openai.InternalServerError) as exc,
    ):
        _ask(_client(sim))
    assert exc.value.status_code == 500
    assert exc.value.type == "server_error"


def test_other_status_faults_use_that_status() -> None:
    with LLMSimulator(SimulatorConfig(script=["401", "503", "400"])).serve_in_thread() as sim:
        client = _client(sim)
        with pytest.raises(openai.AuthenticationError) as auth:
            _ask(client)
        with pytest.raises(openai.InternalServerError) as unavailable:
            _ask(client)
        with pytest.raises(openai.BadRequestError) as bad:
            _ask(client)
    assert auth.value.type == "authentication_error"
    assert unavailable.value.status_code == 503
    assert unavailable.value.type == "server_error"
    assert bad.value.type == "invalid_request_error"


def test_drop_raises_connection_error() -> None:
    with LLMSimulator(SimulatorConfig(script=["drop"])).serve_in_thread() as sim:
        with pytest.raises(openai.APIConnectionError) as exc:
            _ask(_client(sim))
        assert not isinstance(exc.value, openai.APITimeoutError)
        assert sim.requests[-1].fault == "drop"
        assert sim.requests[-1].status is None


def test_hang_times_out_client() -> None:
    config = SimulatorConfig(script=["hang"], hang_seconds=5)
    with LLMSimulator(config).serve_in_thread() as sim:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _ask(_client(sim, timeout=0.5))
        assert time.monotonic() - started < 2
        assert sim.requests[-1].fault == "hang"
        assert sim.requests[-1].status is None
        # The next request is answered normally.
        assert _ask(_client(sim)).choices[0].finish_reason == "stop"


def test_stop_ends_hanging_requests_promptly() -> None:
    errors: list[Exception] = []
    sim = LLMSimulator(SimulatorConfig(script=["hang"], hang_seconds=3600))

    def ask() -> None:
        try:
            _ask(_client(sim, timeout=30))
        except Exception as exc:
            errors.append(exc)

    with sim.serve_in_thread():
        caller = threading.Thread(target=ask)
        caller.start()
        deadline = time.monotonic() + 5
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.requests, "the hanging request never arrived"
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1
    caller.join(timeout=5)
    assert len(errors) == 1
    assert isinstance(errors[0], openai.APIConnectionError)
    assert not isinstance(errors[0], openai.APITimeoutError)


def test_truncate_gives_length_finish_and_invalid_json() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "g", "schema": Grade.model_json_schema(), "strict": True},
    }
    with LLMSimulator(SimulatorConfig(script=["truncate"])).serve_in_thread() as sim:
        client = _client(sim)
        cut = _ask(client, response_format=response_format)
        whole = _ask(client, response_format=response_format)
    assert cut.choices[0].finish_reason == "length"
    content = cut.choices[0].message.content
    assert content == whole.choices[0].message.content[: len(content)]
    assert len(content) == len(whole.choices[0].message.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_malformed_gives_non_json_content() -> None:
    with LLMSimulator(SimulatorConfig(script=["malformed"])).serve_in_thread() as sim:
        answer = _ask(_client(sim), response_format={"type": "json_object"})
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content.startswith("[simulated] ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.choices[0].message.content)


def test_overscore_puts_every_number_out_of_bounds() -> None:
    rubric = load_rubric()
    with LLMSimulator(SimulatorConfig(script=["overscore", "ok"])).serve_in_thread() as sim:
        client = _client(sim)
        answers = [
            _ask(client, response_format=response_format(rubric)).choices[0].message.content
            for _ in range(2)
        ]
    inflated, normal = (json.loads(a) for a in answers)
    assert {c["score"] for c in inflated["criteria"].values()} == {OVERSCORE}
    with pytest.raises(ValidationError):
        rubric.answer_model().model_validate(inflated)
    rubric.answer_model().model_validate(normal)


def test_script_faults_apply_in_order_then_ok() -> None:
    config = SimulatorConfig(script=["429", "500", "ok", "truncate"], fault_rates={})
    with LLMSimulator(config).serve_in_thread() as sim:
        client = _client(sim)
        with pytest.raises(openai.RateLimitError):
            _ask(client)
        with pytest.raises(openai.InternalServerError):
            _ask(client)
        assert _ask(client).choices[0].finish_reason == "stop"
        assert _ask(client).choices[0].finish_reason == "length"
        assert _ask(client).choices[0].finish_reason == "stop"
        assert sim.config.script == []
    assert [r.fault for r in sim.requests] == ["429", "500", None, "truncate", None]
    assert [r.status for r in sim.requests] == [429, 500, 200, 200, 200]


def test_fault_rates_roughly_respected() -> None:
    config = SimulatorConfig(fault_rates={"429": 0.25}, seed=1234)
    with LLMSimulator(config).serve_in_thread() as sim:
        client = _client(sim)
        faults = 0
        for _ in range(400):
            try:
                _ask(client)
            except openai.RateLimitError:
                faults += 1
    assert 60 <= faults <= 140
    assert faults == sum(r.fault == "429" for r in sim.requests)


def test_seed_makes_fault_sequence_repeatable() -> None:
    def faults_seen() -> list[str | None]:
        config = SimulatorConfig(fault_rates={"500": 0.3, "malformed": 0.3}, seed=7)
        with LLMSimulator(config).serve_in_thread() as sim:
            client = _client(sim)
            for _ in range(30):
                with contextlib.suppress(openai.InternalServerError):
                    _ask(client)
        return [r.fault for r in sim.requests]

    first = faults_seen()
    assert first == faults_seen()
    assert {"500", "malformed", None} == set(first)


def test_latency_delays_every_response() -> None:
    with LLMSimulator(SimulatorConfig(latency_ms=200, script=["500"])).serve_in_thread() as sim:
        client = _client(sim)
        for expect_error in (True, False):
            started = time.monotonic()
            try:
                _ask(client)
            except openai.InternalServerError:
                assert expect_error
            assert time.monotonic() - started >= 0.2


# ---- admin, logging and HTTP


def test_admin_config_and_request_log() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        client = _client(sim)
        assert _admin(sim, "GET", "/_simulator/config")["fault_rates"] == {}
        updated = _admin(sim, "POST", "/_simulator/config", {"script": ["500"], "latency_ms": 1})
        assert updated["script"] == ["500"]
        assert sim.config.latency_ms == 1
        with pytest.raises(openai.InternalServerError):
            _ask(client)
        _ask(client)
        log = _admin(sim, "GET", "/_simulator/requests")
        assert [(r["fault"], r["status"], r["model"]) for r in log] == [
            ("500", 500, "gpt-test"),
            (None, 200, "gpt-test"),
        ]
        assert set(log[0]) == {"at", "path", "model", "fault", "status", "prompt_sha256"}
        _admin(sim, "DELETE", "/_simulator/requests")
        assert _admin(sim, "GET", "/_simulator/requests") == []
        for bad in ({"nope": 1}, {"fault_rates": {"429": 2}}, {"script": ["bogus"]}, [1]):
            status, payload = _http(sim, "POST", "/_simulator/config", bad)
            assert status == 400
            assert payload["error"]["type"] == "invalid_request_error"
        assert sim.config.fault_rates == {}


def test_request_log_has_no_message_text() -> None:
    essay = "Zanzibar-marker-essay about the quiet history of lighthouses"
    with LLMSimulator().serve_in_thread() as sim:
        _ask(_client(sim), essay)
        log_text = json.dumps(_admin(sim, "GET", "/_simulator/requests"))
    assert "Zanzibar" not in log_text and "lighthouses" not in log_text
    assert "grade essays" not in log_text
    assert sim.requests[0].prompt_sha256 == hashlib.sha256(essay.encode()).hexdigest()


def test_unknown_path_is_404() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        status, payload = _http(sim, "GET", "/v1/nothing-here")
        assert status == 404
        assert payload["error"]["type"] == "invalid_request_error"
        status, payload = _http(sim, "DELETE", "/v1/models")
        assert status == 405
        assert "error" in payload


def test_models_endpoint_lists_simulated_model() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        models = _client(sim).models.list()
    assert [m.id for m in models.data] == ["simulated"]
    assert models.data[0].owned_by == "grader-simulator"


def test_invalid_body_is_400() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        for body in (b"{not json", b'{"model": "m"}', b"[]"):
            status, payload = _http(sim, "POST", "/v1/chat/completions", body)
            assert status == 400
            error = payload["error"]
            assert error["type"] == "invalid_request_error"
            assert set(error) == {"message", "type", "param", "code"}


def test_bad_http_gets_an_error_and_the_connection_closed() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        garbage = _raw_exchange(sim, b"NOT HTTP AT ALL\r\n\r\n")
        chunked = _raw_exchange(
            sim,
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        )
        no_length = _raw_exchange(sim, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n")
    # _raw_exchange returning at all shows the server closed the connection.
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert chunked.startswith(b"HTTP/1.1 411 ")
    assert no_length.startswith(b"HTTP/1.1 411 ")


def test_keep_alive_until_connection_close() -> None:
    with LLMSimulator().serve_in_thread() as sim:
        port = int(sim.base_url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for _ in range(3):
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, _ = _read_response(sock)
                assert status.startswith(b"HTTP/1.1 200 ")
                assert headers["connection"] == "keep-alive"
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, headers, _ = _read_response(sock)
            assert headers["connection"] == "close"
            assert sock.recv(1) == b""


def test_many_concurrent_requests() -> None:
    # With 200 ms latency, 200 requests only finish quickly if they are served concurrently.
    async def ask_all(base_url: str) -> list[Any]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=30)
        async with client:
            return await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-test", messages=[{"role": "user", "content": f"essay {i}"}]
                    )
                    for i in range(200)
                )
            )

    with LLMSimulator(SimulatorConfig(latency_ms=200)).serve_in_thread() as sim:
        started = time.monotonic()
        answers = asyncio.run(ask_all(sim.base_url))
        elapsed = time.monotonic() - started
        assert len(sim.requests) == 200
    assert all(a.choices[0].finish_reason == "stop" for a in answers)
    assert elapsed < 5


# ---- configuration and the command-line server


def test_parse_fault_rates_rejects_bad_spec() -> None:
    assert parse_fault_rates("429=0.1, 500=0.05,drop=0.01,503=0.2") == {
        "429": 0.1,
        "500": 0.05,
        "drop": 0.01,
        "503": 0.2,
    }
    assert parse_fault_rates("") == {}
    assert set(FAULTS) == {"429", "500", "drop", "hang", "truncate", "malformed", "overscore"}
    for bad in ("bogus=0.1", "429", "429=x", "429=1.5", "429=-0.1", "429=0.6,500=0.6", "ok=0.1"):
        with pytest.raises(ValueError) as exc:
            parse_fault_rates(bad)
        assert "\n" not in str(exc.value)


def test_bad_config_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        LLMSimulator(SimulatorConfig(script=["sometimes"]))
    with pytest.raises(ValueError):
        LLMSimulator(SimulatorConfig(fault_rates={"429": 0.8, "500": 0.8}))


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_announces_itself_and_stops_cleanly_on_signal(stop_signal: int) -> None:
    code = (
        "from grader.simulator import SimulatorConfig, serve_forever\n"
        "serve_forever('127.0.0.1', 0, SimulatorConfig())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("Model simulator listening on http://127.0.0.1:")
        assert line.rstrip().endswith("/v1 (answers are SIMULATED, not grades)")
        base_url = line.split()[4]
        with urllib.request.urlopen(base_url + "/models", timeout=5) as response:
            assert response.status == 200
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0
    assert stdout == b""
    assert stderr == b""
