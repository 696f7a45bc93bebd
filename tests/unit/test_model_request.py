"""One grading request and one reply path for both modes: what the synchronous call sends and
what a batch file's line carries are the same body (but for the essay's random boundary token),
and the synchronous answer and a batch output line give the same ModelReply. No database: the
simulator over loopback HTTP answers both, its chat answer and its Batch API."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re

import openai
from openai.types.chat import ChatCompletion

from grader.grading.rubric import load_rubric
from grader.model.client import request_grade
from grader.model.request import CHAT_COMPLETIONS, GradingRequest, batch_line
from model_simulator import LLMSimulator, SimulatorConfig

RUBRIC = load_rubric()
MODEL = "gpt-4o-mini"
ANCHOR_TOKENS = 500
ESSAY = "Trees give shade.\n\nThey also clean the air, and a city with trees is a cooler city."
TOKEN = re.compile(r"\b[0-9a-f]{16}\b")


def _without_token(body: dict) -> dict:
    """The body with the essay's boundary token (random per request, by design) blanked."""
    tokens = set(TOKEN.findall(body["messages"][1]["content"]))
    assert len(tokens) == 1  # one token, on both boundary lines and in the instruction
    return json.loads(json.dumps(body).replace(tokens.pop(), "TOKEN"))


def _synchronous(simulator: LLMSimulator):
    async def call():
        client = openai.AsyncOpenAI(api_key="x", base_url=simulator.base_url, max_retries=0)
        async with client:
            return await request_grade(client, MODEL, RUBRIC, ESSAY, 1, ANCHOR_TOKENS)

    return asyncio.run(call())


def _batch_output(simulator: LLMSimulator, line: str) -> dict:
    """The simulator's Batch API run on one line; its output record."""
    with openai.OpenAI(api_key="x", base_url=simulator.base_url, max_retries=0) as client:
        upload = client.files.create(file=("in.jsonl", io.BytesIO(line.encode())), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint=CHAT_COMPLETIONS, completion_window="24h"
        )
        batch = client.batches.retrieve(batch.id)  # the simulator's batches finish at once
        assert batch.status == "completed" and batch.output_file_id
        (record,) = map(json.loads, client.files.content(batch.output_file_id).text.splitlines())
    return record


def test_the_batch_line_carries_the_synchronous_request_and_both_replies_are_one() -> None:
    # Known scores, so that the answer does not depend on the boundary token (the simulator
    # otherwise scores a hash of the whole prompt): the same content comes back both ways.
    sha = hashlib.sha256(ESSAY.encode()).hexdigest()
    reference = {sha: {c.key: c.max_points // 2 for c in RUBRIC.criteria}}
    simulator = LLMSimulator(SimulatorConfig(keep_bodies=True, reference=reference))
    request = GradingRequest.of(RUBRIC, MODEL, ANCHOR_TOKENS)
    line = json.loads(batch_line("job-1", request.body(ESSAY)))
    assert {k: line[k] for k in ("custom_id", "method", "url")} == {
        "custom_id": "job-1",
        "method": "POST",
        "url": CHAT_COMPLETIONS,
    }
    with simulator.serve_in_thread():
        synchronous = _synchronous(simulator)
        record = _batch_output(simulator, json.dumps(line))
    sent, batched = (json.loads(r.body) for r in simulator.requests)
    assert _without_token(sent) == _without_token(batched) == _without_token(line["body"])

    body = record["response"]["body"]
    from_batch = request.reply(body)
    assert synchronous == from_batch
    assert (
        synchronous.prompt_version == request.prompt_version and len(request.prompt_version) == 12
    )
    assert synchronous.content and synchronous.finish_reason == "stop"
    assert synchronous.model == f"simulated:{MODEL}" and synchronous.prompt_tokens > 0
    # the openai object of a synchronous answer, read by the same path
    assert request.reply(ChatCompletion.model_validate(body).model_dump()) == from_batch


def test_a_completion_without_choices_or_usage_is_an_empty_reply_not_an_error() -> None:
    request = GradingRequest.of(RUBRIC, MODEL)
    reply = request.reply({"choices": [], "usage": None}, attempts=3)
    assert (reply.content, reply.finish_reason, reply.model) == (None, None, MODEL)
    assert (reply.prompt_tokens, reply.completion_tokens, reply.attempts) == (0, 0, 3)
