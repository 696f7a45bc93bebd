"""The simulator's chat-completions answer: an OpenAI-compatible answer to one request body.

It answers the schema the grader builds from a rubric with scores drawn from a hash of the essay
(0 to each criterion's maximum), other requests with plain text, and on a script or at random
rates fails as a real provider does (model_simulator/faults.py; `overscore` gives out-of-bounds
scores, as from a model an essay talked into "full marks and more"). Told the human scores of
some essays (`reference`), it gives those back with controlled noise; in gullible mode it reads
the essay and can be talked into a better grade (model_simulator/gullible.py).

Its answers are NOT grades: every generated string starts with "[simulated] ", the reported model
is "simulated:<requested model>", the fingerprint "grader-simulator". Request bodies hold student
essays: never printed or logged, kept only when a test asks (`keep_bodies`); the request log
keeps a sha256 of the last user message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response

from model_simulator.config import SimulatorConfig
from model_simulator.faults import (
    OVERSCORE,
    FaultPicker,
    error_response,
    failed_request,
    spoiled,
)
from model_simulator.gullible import obeyed_instruction, read_scores

_ESSAY = re.compile(r"<<<ESSAY (\w+)>>>\n(.*)\n<<<END ESSAY \1>>>", re.DOTALL)


@dataclass
class RequestRecord:
    """One chat-completions request, without its text (unless the config keeps bodies)."""

    at: float
    path: str
    model: str | None
    fault: str | None
    status: int | None  # None when no response was sent (drop, hang)
    prompt_sha256: str | None
    body: str | None = field(default=None, repr=False)  # only with keep_bodies


def _rubric_maxima(spec: Any) -> tuple[dict[str, int], bool] | None:
    """({criterion key: maximum score}, whether it asks for a confidence) if a json_schema
    response format asks for the grader's answer, {"criteria": {key: {"score",
    "justification"[, "confidence"]}}, "overall_feedback"}, with its objects inline or as
    "#/$defs/..." references; None for any other schema."""

    def props(schema: dict[str, Any], *names: str, optional: str = "") -> dict[str, dict]:
        ref = schema.get("$ref", "")
        schema = spec["schema"]["$defs"][ref[8:]] if ref.startswith("#/$defs/") else schema
        if names and set(schema["properties"]) - {optional} != set(names):
            raise KeyError(names)
        return schema["properties"]

    try:
        answer = props(spec["schema"], "criteria", "overall_feedback")
        maxima, confidence = {}, set()
        for key, criterion in props(answer["criteria"]).items():
            parts = props(criterion, "score", "justification", optional="confidence")
            score, maxima[key] = parts["score"], parts["score"]["maximum"]
            confidence.add("confidence" in parts)
            if (score["type"], parts["justification"]["type"]) != ("integer", "string"):
                return None
        ok = all(type(top) is int and top >= 0 for top in maxima.values())
        ok = ok and len(confidence) == 1 and answer["overall_feedback"]["type"] == "string"
        return (maxima, confidence.pop()) if maxima and ok else None
    except (KeyError, TypeError, AttributeError):
        return None


def _text(content: object) -> str:
    """A message's text: its content string, or the text of its typed parts."""
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(text for text in parts if isinstance(text, str))
    return content if isinstance(content, str) else ""


class ChatCompletions:
    """The chat-completions logic of one simulator: its config (changes apply to the next
    request), its fault sequence, and how often each known essay was asked (for its noise)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultPicker(config.seed)
        self._asked: dict[str, int] = {}

    def _known_scores(
        self, prompt: str, system: str, maxima: dict[str, int]
    ) -> dict[str, tuple[int, str]]:
        """{criterion: (score, confidence)} from the reference scores of the essay in `prompt`,
        with the configured noise; empty for an essay it was not told about."""
        essay = _ESSAY.search(prompt)
        if not self.config.reference or essay is None:
            return {}
        sha = hashlib.sha256(essay.group(2).encode()).hexdigest()
        asked = self._asked[sha] = self._asked.get(sha, 0) + 1
        noise, scores = self.config.reference_noise, {}
        off_by_one = noise.get("off_by_one", 0)
        if "<<<EXAMPLE 1>>>" in system:
            off_by_one = noise.get("anchored_off_by_one", off_by_one)
        for key, human in self.config.reference.get(sha, {}).items():
            if key not in maxima:
                continue
            rng = random.Random(f"{self.config.seed}:{sha}:{key}:{asked}")
            confidence = "high"
            if rng.random() < noise.get("random", 0):
                score, confidence = rng.randint(0, maxima[key]), "medium"
            else:
                score = human + int(noise.get("bias", 0))
                if rng.random() < off_by_one:
                    score, confidence = score + rng.choice((-1, 1)), "low"
            scores[key] = (min(max(score, 0), maxima[key]), confidence)
        return scores

    def _gullible(self, prompt: str, maxima: dict[str, int]) -> tuple[bool, str, dict[str, int]]:
        """In gullible mode: (whether this answer obeys the essay's request for a score, the
        request to quote, the scores from reading the essay); else (False, "", {})."""
        if not self.config.gullible:
            return False, "", {}
        found = _ESSAY.search(prompt)
        essay = found.group(2) if found else prompt
        request = obeyed_instruction(essay)
        if request is None:
            return False, "", read_scores(essay, maxima)
        sha = hashlib.sha256(essay.encode()).hexdigest()
        asked = self._asked[f"gullible:{sha}"] = self._asked.get(f"gullible:{sha}", 0) + 1
        rng = random.Random(f"{self.config.seed}:gullible:{sha}:{asked}")
        obeys = rng.random() < self.config.gullible
        echo = obeys and rng.random() < self.config.gullible_echo
        return obeys, request[:200] if echo else "", read_scores(essay, maxima)

    def answer(
        self, raw: bytes, record: RequestRecord, stopping: asyncio.Event | None = None
    ) -> Response:
        """The answer to one request body (JSON bytes), a fault's or the model's; fills in
        `record`. A hang waits on `stopping` (the server's shutdown) as well."""
        try:
            body = json.loads(raw)
            model, messages = body.get("model"), body.get("messages")
        except (ValueError, AttributeError):  # UnicodeDecodeError is a ValueError
            return error_response(400, "request body must be a JSON object")
        record.model = model if isinstance(model, str) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages or [0]):
            return error_response(400, "'messages' must be a non-empty list of objects", "messages")
        user_texts = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt = user_texts[-1] if user_texts else ""
        if user_texts:
            record.prompt_sha256 = hashlib.sha256(prompt.encode()).hexdigest()
        if not isinstance(model, str) or not model:
            return error_response(400, "'model' is required and must be a string", "model")
        if body.get("stream"):
            return error_response(400, "the simulator does not support streaming", "stream")
        response_format = body.get("response_format") or {"type": "text"}
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            message = "'response_format.type' must be 'text', 'json_object' or 'json_schema'"
            return error_response(400, message, "response_format")
        schema = _rubric_maxima(response_format.get("json_schema"))
        maxima, asks_confidence = schema or (None, False)
        if kind == "json_schema" and maxima is None:
            message = "cannot answer this schema: the simulator answers only the grader's rubric"
            return error_response(400, message, "response_format")

        # Faults come after validation: a script is spent only on requests a real API accepts.
        config = self.config
        fault = record.fault = self.faults.pick(config.script, config.seed, config.fault_rates)
        failed = failed_request(fault, config.hang_seconds, config.retry_after_seconds, stopping)
        if failed is not None:
            return failed

        content = "[simulated] A placeholder answer from the model simulator, not a grade."
        if maxima is not None:  # the same essay gets the same scores, spread over 0..max
            digest, criteria = hashlib.sha256(prompt.encode()).digest(), {}
            system = next(
                (_text(m.get("content")) for m in messages if m.get("role") == "system"), ""
            )
            known = self._known_scores(prompt, system, maxima)
            obeyed, echo, read = self._gullible(prompt, maxima)
            for i, (key, top) in enumerate(maxima.items()):
                score, confidence = known.get(key, (digest[i % 32] % (top + 1), "medium"))
                if read and key not in known:
                    score = read[key]
                score = top if obeyed else score
                score = OVERSCORE if fault == "overscore" else score
                criteria[key] = {"score": score, "justification": f"[simulated] placeholder: {key}"}
                if echo:
                    criteria[key]["justification"] = f'[simulated] {key}: the essay says "{echo}"'
                if asks_confidence:
                    criteria[key]["confidence"] = confidence
            feedback = "[simulated] placeholder feedback from the model simulator, not a grade."
            content = json.dumps({"criteria": criteria, "overall_feedback": feedback})
        content, finish_reason = spoiled(fault, content)
        prompt_tokens = max(1, sum(len(_text(m.get("content"))) for m in messages) // 4)
        tokens = {"prompt_tokens": prompt_tokens, "completion_tokens": max(1, len(content) // 4)}
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        return JSONResponse(
            {
                "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"simulated:{model}",
                "system_fingerprint": "grader-simulator",
                "choices": [choice],
                "usage": {**tokens, "total_tokens": sum(tokens.values())},
            }
        )
