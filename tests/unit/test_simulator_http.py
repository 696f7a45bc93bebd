"""The model simulator as an HTTP server: latency, the admin routes and the request log (never
the text), bad paths and bodies, many requests at once; its configuration checked up front."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from model_simulator import FAULTS, LLMSimulator, SimulatorConfig, parse_fault_rates
from tests.support.model_calls import _admin, _ask, _client, _http


def test_admin_config_and_request_log(shared_simulator: Callable[..., LLMSimulator]) -> None:
    sim = shared_simulator()
    client = _client(sim)
    config = _admin(sim, "GET", "/_simulator/config")
    assert config["fault_rates"] == {} and config["latency_ms"] == 0
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
    assert log[0]["path"] == "/v1/chat/completions"
    _admin(sim, "DELETE", "/_simulator/requests")
    assert _admin(sim, "GET", "/_simulator/requests") == []
    assert sim.requests == []
    bad_updates: list[object] = [
        {"nope": 1},
        {"fault_rates": {"429": 2}},
        {"fault_rates": {"429": 0.6, "500": 0.6}},
        {"fault_rates": {"bogus": 0.1}},
        {"script": ["bogus"]},
        {"latency_ms": -1},
        {"seed": 1.5},
        {"keep_bodies": "yes"},
        {"latency_ms": 5, "script": "500"},  # all or nothing: latency_ms stays 1
        [1],
        b"{not json",
    ]
    for bad in bad_updates:
        status, payload = _http(sim, "POST", "/_simulator/config", bad)
        assert status == 400, bad
        assert payload["error"]["type"] == "invalid_request_error"
        assert "\n" not in payload["error"]["message"]
    assert _admin(sim, "GET", "/_simulator/config") == updated | {"script": []}
    assert sim.config.fault_rates == {} and sim.config.latency_ms == 1


def test_request_log_has_no_message_text(shared_simulator: Callable[..., LLMSimulator]) -> None:
    essay = "Zanzibar-marker-essay about the quiet history of lighthouses"
    sim = shared_simulator()
    _ask(_client(sim), essay)
    sim.config.keep_bodies = True
    _ask(_client(sim), essay)
    log_text = json.dumps(_admin(sim, "GET", "/_simulator/requests"))
    # Over HTTP, never any text, even with keep_bodies.
    assert "Zanzibar" not in log_text and "lighthouses" not in log_text
    assert "grade essays" not in log_text
    assert sim.requests[0].prompt_sha256 == hashlib.sha256(essay.encode()).hexdigest()
    assert sim.requests[0].body is None
    assert "Zanzibar" not in repr(sim.requests[1])
    assert json.loads(sim.requests[1].body or "")["messages"][1]["content"] == essay


def test_unknown_path_is_404_and_wrong_method_405(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    sim = shared_simulator()
    status, payload = _http(sim, "GET", "/v1/nothing-here")
    assert status == 404
    assert payload["error"]["type"] == "invalid_request_error"
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    for method, path in (("DELETE", "/v1/models"), ("GET", "/v1/chat/completions")):
        status, payload = _http(sim, method, path)
        assert status == 405
        assert payload["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        _client(sim).embeddings.create(model="m", input="x")
    assert sim.requests == []


def test_models_endpoint_lists_simulated_model(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    sim = shared_simulator()
    models = _client(sim).models.list()
    assert [m.id for m in models.data] == ["simulated"]
    assert models.data[0].owned_by == "grader-simulator"


def test_invalid_body_is_400(shared_simulator: Callable[..., LLMSimulator]) -> None:
    sim = shared_simulator(SimulatorConfig(script=["500"]))
    for body in (
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"model": "m"}',
        b'{"model": "m", "messages": []}',
        b'{"model": "m", "messages": ["hi"]}',
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}',
    ):
        status, payload = _http(sim, "POST", "/v1/chat/completions", body)
        assert status == 400, body
        error = payload["error"]
        assert error["type"] == "invalid_request_error"
        assert set(error) == {"message", "type", "param", "code"}
    assert sim.config.script == ["500"]  # invalid requests spend no fault
    assert all(r.status == 400 and r.fault is None for r in sim.requests)


def test_many_concurrent_requests() -> None:
    # With 500 ms latency, 200 requests take 100 s one after another; served concurrently,
    # about 2 s (the bound leaves room for a busy machine).
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

    with LLMSimulator(SimulatorConfig(latency_ms=500)).serve_in_thread() as sim:
        started = time.monotonic()
        answers = asyncio.run(ask_all(sim.base_url))
        elapsed = time.monotonic() - started
        assert len(sim.requests) == 200
        assert len({r.prompt_sha256 for r in sim.requests}) == 200
    assert all(a.choices[0].finish_reason == "stop" for a in answers)
    assert elapsed < 20


# ---- configuration


def test_parse_fault_rates_rejects_bad_spec() -> None:
    assert parse_fault_rates("429=0.1, 500=0.05,drop=0.01,503=0.2") == {
        "429": 0.1,
        "500": 0.05,
        "drop": 0.01,
        "503": 0.2,
    }
    assert parse_fault_rates("") == {}
    assert set(FAULTS) == {"429", "500", "drop", "hang", "truncate", "malformed", "overscore"}
    for bad, words in {
        "bogus=0.1": "unknown fault",
        "429": "NAME=RATE",
        "429=x": "number",
        "429=1.5": "0 to 1",
        "429=-0.1": "0 to 1",
        "429=nan": "0 to 1",
        "429=0.1,429=0.2": "more than once",
        "429=0.6,500=0.6": "more than 1",
        "ok=0.1": "unknown fault",
        "600=0.1": "unknown fault",
    }.items():
        with pytest.raises(ValueError, match=words) as exc:
            parse_fault_rates(bad)
        assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"script": ["sometimes"]},
        {"fault_rates": {"429": 0.8, "500": 0.8}},
        {"fault_rates": {"429": -0.1}},
        {"latency_ms": -5},
        {"hang_seconds": float("inf")},
        {"retry_after_seconds": "1"},
        {"seed": "7"},
        {"keep_bodies": 1},
    ],
)
def test_bad_config_is_refused_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**bad)
    config = SimulatorConfig()
    for name, value in bad.items():
        setattr(config, name, value)
    with pytest.raises(ValueError):
        LLMSimulator(config)
