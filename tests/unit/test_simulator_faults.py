"""The model simulator's faults, over real HTTP: error statuses, dropped and hanging
connections, truncated and malformed answers, scripts, rates and seeds."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable

import openai
import pytest
from pydantic import ValidationError

from grader.grading.rubric import load_rubric
from grader.model.prompt import response_format
from model_simulator import OVERSCORE, LLMSimulator, SimulatorConfig
from tests.support.model_calls import TWO_CRITERIA, _admin, _ask, _client, _grade, _port


def test_429_carries_retry_after_header(shared_simulator: Callable[..., LLMSimulator]) -> None:
    config = SimulatorConfig(script=["429", "429"], retry_after_seconds=2.5)
    sim = shared_simulator(config)
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


def test_500_is_server_error(shared_simulator: Callable[..., LLMSimulator]) -> None:
    sim = shared_simulator(SimulatorConfig(script=["500"]))
    with pytest.raises(openai.InternalServerError) as exc:
        _ask(_client(sim))
    assert exc.value.status_code == 500
    assert exc.value.type == "server_error"
    assert set(exc.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


def test_other_status_faults_use_that_status(shared_simulator: Callable[..., LLMSimulator]) -> None:
    script = ["401", "503", "400", "418"]
    sim = shared_simulator(SimulatorConfig(script=script))
    client = _client(sim)
    with pytest.raises(openai.AuthenticationError) as auth:
        _ask(client)
    with pytest.raises(openai.InternalServerError) as unavailable:
        _ask(client)
    with pytest.raises(openai.BadRequestError) as bad:
        _ask(client)
    with pytest.raises(openai.APIStatusError) as teapot:
        _ask(client)
    assert [r.status for r in sim.requests] == [401, 503, 400, 418]
    assert auth.value.type == "authentication_error"
    assert unavailable.value.status_code == 503
    assert unavailable.value.type == "server_error"
    assert bad.value.type == "invalid_request_error"
    assert teapot.value.status_code == 418


def test_drop_raises_connection_error(caplog: pytest.LogCaptureFixture) -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)  # even if uvicorn's log does not reach the root
    try:
        with LLMSimulator(SimulatorConfig(script=["drop"])).serve_in_thread() as sim:
            with pytest.raises(openai.APIConnectionError) as exc:
                _ask(_client(sim))
            assert not isinstance(exc.value, openai.APITimeoutError)
            assert sim.requests[-1].fault == "drop"
            assert sim.requests[-1].status is None
            # The next request is answered normally.
            assert _ask(_client(sim)).choices[0].finish_reason == "stop"
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    assert not caplog.records  # a deliberate drop is not logged as an error


def test_hang_times_out_client() -> None:
    config = SimulatorConfig(script=["hang"], hang_seconds=5)
    with LLMSimulator(config).serve_in_thread() as sim:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _ask(_client(sim, timeout=0.5))
        assert time.monotonic() - started < 2
        assert sim.requests[-1].fault == "hang"
        assert sim.requests[-1].status is None
        assert _ask(_client(sim)).choices[0].finish_reason == "stop"


def test_hang_ends_after_hang_seconds_as_a_dropped_connection() -> None:
    config = SimulatorConfig(script=["hang"], hang_seconds=0.3)
    with LLMSimulator(config).serve_in_thread() as sim:
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError) as exc:
            _ask(_client(sim, timeout=10))
        assert not isinstance(exc.value, openai.APITimeoutError)
        assert 0.3 <= time.monotonic() - started < 3


@pytest.mark.parametrize(
    "config",
    [SimulatorConfig(script=["hang"]), SimulatorConfig(latency_ms=3_600_000)],
    ids=["hang", "latency"],
)
def test_stop_ends_waiting_requests_promptly(config: SimulatorConfig) -> None:
    errors: list[Exception] = []
    sim = LLMSimulator(config)
    before = set(threading.enumerate())  # the session's own simulator may be running

    def ask() -> None:
        try:
            _ask(_client(sim, timeout=30))
        except Exception as exc:
            errors.append(exc)

    with sim.serve_in_thread():
        port = _port(sim)
        caller = threading.Thread(target=ask)
        caller.start()
        deadline = time.monotonic() + 5
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.requests, "the request never arrived"
        time.sleep(0.1)  # let it start waiting
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1
    caller.join(timeout=5)
    assert len(errors) == 1
    assert isinstance(errors[0], openai.APIConnectionError)
    assert not isinstance(errors[0], openai.APITimeoutError)
    # Nothing is left behind: no thread, and the port is closed.
    assert not [t for t in set(threading.enumerate()) - before if t.name == "llm-simulator"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_truncate_gives_length_finish_and_invalid_json(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    rubric_format = response_format(load_rubric())
    sim = shared_simulator(SimulatorConfig(script=["truncate"]))
    client = _client(sim)
    cut = _ask(client, response_format=rubric_format)
    whole = _ask(client, response_format=rubric_format)
    assert cut.choices[0].finish_reason == "length"
    content = cut.choices[0].message.content
    assert content == whole.choices[0].message.content[: len(content)]
    assert len(content) == len(whole.choices[0].message.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_malformed_gives_non_json_content(shared_simulator: Callable[..., LLMSimulator]) -> None:
    rubric_format = response_format(load_rubric())
    sim = shared_simulator(SimulatorConfig(script=["malformed"]))
    answer = _ask(_client(sim), response_format=rubric_format)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content.startswith("[simulated] ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.choices[0].message.content)


def test_overscore_puts_every_number_out_of_bounds(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    sim = shared_simulator(SimulatorConfig(script=["overscore", "ok"]))
    client = _client(sim)
    inflated, normal = (
        json.loads(_grade(client, TWO_CRITERIA).choices[0].message.content) for _ in range(2)
    )
    assert [c["score"] for c in inflated["criteria"].values()] == [OVERSCORE, OVERSCORE]
    with pytest.raises(ValidationError):
        TWO_CRITERIA.answer_model().model_validate(inflated)
    TWO_CRITERIA.answer_model().model_validate(normal)


def test_script_faults_apply_in_order_then_ok(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    config = SimulatorConfig(script=["429", "500", "ok", "truncate"], fault_rates={})
    sim = shared_simulator(config)
    client = _client(sim)
    with pytest.raises(openai.BadRequestError):
        _ask(client, response_format={"type": "yaml"})  # refused: no script entry spent
    with pytest.raises(openai.RateLimitError):
        _ask(client)
    with pytest.raises(openai.InternalServerError):
        _ask(client)
    assert _ask(client).choices[0].finish_reason == "stop"
    assert _ask(client).choices[0].finish_reason == "length"
    assert _ask(client).choices[0].finish_reason == "stop"
    assert sim.config.script == []
    assert [r.fault for r in sim.requests] == [None, "429", "500", None, "truncate", None]
    assert [r.status for r in sim.requests] == [400, 429, 500, 200, 200, 200]


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
    def faults_seen(sim: LLMSimulator, n: int = 30) -> list[str | None]:
        sim.requests.clear()
        client = _client(sim)
        for _ in range(n):
            with contextlib.suppress(openai.InternalServerError):
                _ask(client)
        return [r.fault for r in sim.requests]

    def fresh(seed: int) -> list[str | None]:
        config = SimulatorConfig(fault_rates={"500": 0.3, "malformed": 0.3}, seed=seed)
        with LLMSimulator(config).serve_in_thread() as sim:
            return faults_seen(sim)

    seven, eight = fresh(7), fresh(8)
    assert seven == fresh(7)
    assert {"500", "malformed", None} == set(seven)
    assert seven != eight
    config = SimulatorConfig(fault_rates={"500": 0.3, "malformed": 0.3}, seed=7)
    with LLMSimulator(config).serve_in_thread() as sim:
        faults_seen(sim, 5)
        sim.config.seed = 8  # a changed seed re-seeds
        assert faults_seen(sim) == eight
        # The admin API re-seeds even with the same seed: the sequence starts over.
        _admin(sim, "POST", "/_simulator/config", {"seed": 8})
        assert faults_seen(sim) == eight


def test_latency_delays_every_chat_response_but_not_admin_calls() -> None:
    with LLMSimulator(SimulatorConfig(latency_ms=300, script=["500"])).serve_in_thread() as sim:
        client = _client(sim)
        for expect_error in (True, False):
            started = time.monotonic()
            try:
                _ask(client)
                assert not expect_error
            except openai.InternalServerError:
                assert expect_error
            assert time.monotonic() - started >= 0.3
        sim.config.latency_ms = 10_000
        started = time.monotonic()
        _admin(sim, "GET", "/_simulator/requests")
        _admin(sim, "GET", "/_simulator/config")
        client.models.list()
        assert time.monotonic() - started < 5
