"""The chat request of a grading and the way back from its answer, the same in both modes: the
synchronous call sends `GradingRequest.body` as is, and the batch mode writes the very same body
into its file's lines (`batch_line`); a chat completion, whether the openai object of a
synchronous call or the JSON body of a batch output line, becomes a `ModelReply` through
`GradingRequest.reply`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.grading.rubric import Rubric
from grader.grading.scoring import ModelReply
from grader.model.prompt import essay_message, prompt_version, response_format, system_prompt

CHAT_COMPLETIONS = "/v1/chat/completions"


@dataclass(frozen=True)
class GradingRequest:
    """What every grading of one rubric sends, but the essay; built once per rubric (a batch
    holds many essays of few rubrics, and the answer schema is not free to build)."""

    model: str
    # the system prompt: instructions, rubric, the anchor essays that fit (kept out of a repr)
    system: str = field(repr=False)
    response_format: dict[str, Any] = field(repr=False)
    prompt_version: str

    @classmethod
    def of(cls, rubric: Rubric, model: str, anchor_tokens: int = 0) -> GradingRequest:
        system = system_prompt(rubric, anchor_tokens)
        return cls(model, system, response_format(rubric), prompt_version(system))

    def body(self, essay: str) -> dict[str, Any]:
        """The chat-completions request body for `essay` (with its own boundary token)."""
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": self.system}, essay_message(essay)],
            "response_format": self.response_format,
            "temperature": 0,
        }

    def reply(self, completion: Mapping[str, Any], attempts: int = 1) -> ModelReply:
        """The model's answer to this request, from a chat completion as JSON (a batch output
        line's body, or a synchronous answer's `model_dump()`); nothing in it trusted yet."""
        choice = (completion.get("choices") or [{}])[0]
        usage = completion.get("usage") or {}
        return ModelReply(
            content=(choice.get("message") or {}).get("content"),
            finish_reason=choice.get("finish_reason"),
            model=completion.get("model") or self.model,
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            attempts=attempts,
            prompt_version=self.prompt_version,
        )


def batch_line(custom_id: str, body: dict[str, Any]) -> str:
    """One line of a Batch API input file: a chat-completions request, known by `custom_id`."""
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": CHAT_COMPLETIONS, "body": body}
    )
