"""Calling the model simulator from a test: the official openai client, and plain HTTP for
its admin routes and for requests the client would refuse to send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openai

from grader.grading.rubric import Rubric, parse_rubric
from grader.model.prompt import response_format
from model_simulator import LLMSimulator

ESSAY = "The industrial revolution changed how people worked, mostly for the better."
TWO_CRITERIA = parse_rubric(
    {
        "name": "Two criteria",
        "criteria": [
            {"key": "clarity", "name": "Clarity", "description": "Is it clear?", "max_points": 3},
            {"key": "depth", "name": "Depth", "description": "Is it deep?", "max_points": 7},
        ],
    },
    "test",
)


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


def _grade(client: openai.OpenAI, rubric: Rubric, essay: str = ESSAY) -> Any:
    """A completion for the schema the grader sends (grader.model.prompt.response_format)."""
    return _ask(client, essay, response_format=response_format(rubric))


def _port(sim: LLMSimulator) -> int:
    return int(sim.base_url.rsplit(":", 1)[1].split("/")[0])


def _http(sim: LLMSimulator, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """(status, decoded JSON body) of one plain HTTP request; bytes bodies are sent as is."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        sim.base_url.removesuffix("/v1") + path, data=data, method=method
    )
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
