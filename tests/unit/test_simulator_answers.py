"""The model simulator's answers, over real HTTP with the official openai client: shaped by the
rubric and the schema in the request, the same for the same request, marked simulated."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from grader.grading.rubric import load_rubric
from grader.model.prompt import build_messages, response_format
from model_simulator import LLMSimulator
from tests.support.model_calls import ESSAY, TWO_CRITERIA, _ask, _client, _grade, _http


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}


def _inline_refs(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """The schema with every "#/$defs/..." reference replaced by its target."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(defs[schema["$ref"].removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    return schema


def test_answer_follows_the_rubric_in_the_request(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    answer_model = TWO_CRITERIA.answer_model()
    seen: dict[str, set[int]] = {"clarity": set(), "depth": set()}
    sim = shared_simulator()
    client = _client(sim)
    for i in range(40):
        completion = _grade(client, TWO_CRITERIA, f"{ESSAY} ({i})")
        content = completion.choices[0].message.content
        answer = json.loads(content)
        answer_model.model_validate(answer)  # keys, types and bounds as the grader checks
        assert set(answer["criteria"]) == {"clarity", "depth"}
        for key, criterion in answer["criteria"].items():
            seen[key].add(criterion["score"])
            assert criterion["justification"].startswith("[simulated] ")
        assert answer["overall_feedback"].startswith("[simulated] ")
        assert completion.choices[0].finish_reason == "stop"
    # Scores are spread over the whole of each criterion's range, and never beyond it.
    assert seen["clarity"] == {0, 1, 2, 3}
    assert seen["depth"] <= set(range(8)) and len(seen["depth"]) >= 6


def test_answer_with_inline_schema_and_from_openai_parse(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    # The grader's schema uses $defs/$ref; an inlined copy and openai's own strict version of it
    # (what `.parse()` sends) are the same shape and get the same answer.
    schema = response_format(TWO_CRITERIA)["json_schema"]["schema"]
    assert "$defs" in schema
    answer_model = TWO_CRITERIA.answer_model()
    messages = [{"role": "user", "content": ESSAY}]
    sim = shared_simulator()
    client = _client(sim)
    answers = [
        client.chat.completions.create(
            model="m", messages=messages, response_format=_json_schema(s)
        )
        .choices[0]
        .message.content
        for s in (schema, _inline_refs(schema))
    ]
    parsed = client.chat.completions.parse(
        model="m", messages=messages, response_format=answer_model
    )
    assert answers[0] == answers[1]
    assert parsed.choices[0].message.content == answers[0]
    assert parsed.choices[0].message.parsed == answer_model.model_validate_json(answers[0])


def test_the_graders_own_request_gets_a_valid_answer(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    rubric = load_rubric()
    messages = build_messages(rubric, ESSAY)
    sim = shared_simulator()
    completion = _client(sim).chat.completions.create(
        model="gpt-test",
        messages=messages,  # type: ignore[arg-type]
        response_format=response_format(rubric),  # type: ignore[arg-type]
        temperature=0,
    )
    assert (
        sim.requests[0].prompt_sha256
        == hashlib.sha256(messages[-1]["content"].encode()).hexdigest()
    )
    answer = rubric.answer_model().model_validate_json(completion.choices[0].message.content)
    assert answer.model_dump()["criteria"].keys() == {c.key for c in rubric.criteria}
    assert completion.model == "simulated:gpt-test"


def test_same_request_gets_same_answer(shared_simulator: Callable[..., LLMSimulator]) -> None:
    rubric_format = response_format(load_rubric())
    sim = shared_simulator()
    client = _client(sim)
    first = _ask(client, response_format=rubric_format).choices[0].message.content
    second = _ask(client, response_format=rubric_format).choices[0].message.content
    other = _ask(client, "Another essay.", response_format=rubric_format)
    assert first == second
    assert other.choices[0].message.content != first


def test_plain_and_json_object_answers_say_they_are_simulated(
    shared_simulator: Callable[..., LLMSimulator],
) -> None:
    sim = shared_simulator()
    client = _client(sim)
    answers = [
        _ask(client),
        _ask(client, response_format={"type": "text"}),
        _ask(client, response_format={"type": "json_object"}),
    ]
    for answer in answers:
        assert answer.choices[0].message.content.startswith("[simulated] ")
        assert "simulat" in answer.choices[0].message.content.removeprefix("[simulated] ")
        assert answer.model == "simulated:gpt-test"
        assert answer.system_fingerprint == "grader-simulator"
        assert answer.id.startswith("chatcmpl-sim-")
        assert answer.choices[0].finish_reason == "stop"
    text = answers[0]
    prompt_chars = len("You grade essays.") + len(ESSAY)
    assert text.usage.prompt_tokens == prompt_chars // 4
    assert text.usage.completion_tokens == len(text.choices[0].message.content) // 4
    assert text.usage.total_tokens == text.usage.prompt_tokens + text.usage.completion_tokens


class Other(BaseModel):
    overall: int
    note: str


def _other_schemas() -> list[dict[str, Any]]:
    rubric_schema = response_format(TWO_CRITERIA)["json_schema"]["schema"]
    no_maximum = copy.deepcopy(rubric_schema)
    del no_maximum["$defs"]["Score_depth"]["properties"]["score"]["maximum"]
    string_score = copy.deepcopy(rubric_schema)
    string_score["$defs"]["Score_depth"]["properties"]["score"]["type"] = "string"
    extra_field = copy.deepcopy(rubric_schema)
    extra_field["properties"]["total"] = {"type": "integer"}
    missing_def = copy.deepcopy(rubric_schema)
    del missing_def["$defs"]["CriterionScores"]
    no_criteria = copy.deepcopy(rubric_schema)
    no_criteria["$defs"]["CriterionScores"]["properties"] = {}
    return [
        Other.model_json_schema(),
        no_maximum,
        string_score,
        extra_field,
        missing_def,
        no_criteria,
        {"type": "string"},
    ]


@pytest.mark.parametrize("schema", _other_schemas())
def test_schema_of_another_shape_is_400(
    schema: dict[str, Any], shared_simulator: Callable[..., LLMSimulator]
) -> None:
    sim = shared_simulator()
    with pytest.raises(openai.BadRequestError) as exc:
        _ask(_client(sim), response_format=_json_schema(schema))
    assert "cannot answer this schema" in exc.value.message
    assert exc.value.param == "response_format"
    # Refused before any fault: the script is not spent on it.
    assert sim.requests[-1].status == 400 and sim.requests[-1].fault is None


def test_bad_response_format_is_400(shared_simulator: Callable[..., LLMSimulator]) -> None:
    sim = shared_simulator()
    for bad in ({"type": "yaml"}, "json", {"type": "json_schema"}):
        status, payload = _http(
            sim,
            "POST",
            "/v1/chat/completions",
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": bad,
            },
        )
        assert status == 400, bad
        assert payload["error"]["param"] == "response_format"
