"""The model client and one grading request.

Any OpenAI-compatible endpoint works (OPENAI_BASE_URL: OpenAI, Azure OpenAI, Ollama, vLLM,
llama.cpp, or `grader simulate-llm`). The client never retries by itself: retries belong to the
call-OpenAI Prefect task, where a reader sees the policy and the UI shows every attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from grader.grading.rubric import Rubric
from grader.grading.scoring import ModelReply
from grader.model.request import GradingRequest
from grader.settings import Settings


@asynccontextmanager
async def model_client(settings: Settings) -> AsyncIterator[openai.AsyncOpenAI]:
    settings.require_model()
    client = openai.AsyncOpenAI(
        # local servers (Ollama, vLLM, the simulator) take any key
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        timeout=settings.request_timeout,
        max_retries=0,
    )
    try:
        yield client
    finally:
        await client.close()


async def request_grade(
    client: openai.AsyncOpenAI,
    model: str,
    rubric: Rubric,
    essay: str,
    attempt: int,
    anchor_tokens: int = 0,
) -> ModelReply:
    request = GradingRequest.of(rubric, model, anchor_tokens)
    completion = await client.chat.completions.create(**request.body(essay))
    return request.reply(completion.model_dump(), attempt)
