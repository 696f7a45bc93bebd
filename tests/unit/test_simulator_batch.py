"""The simulator's Files and Batch API, driven by the official openai client over HTTP: the
lifecycle, per-line answers and faults, whole-batch faults, and state across a restart."""

from __future__ import annotations

import io
import json
import time

import openai
import pytest

from grader.grading.rubric import load_rubric
from grader.grading.scoring import ModelReply, parse_reply
from grader.model.prompt import build_messages, response_format
from model_simulator import BatchConfig, LLMSimulator, SimulatorConfig

RUBRIC = load_rubric()


def _lines(n: int, model: str = "gpt-4o-mini", start: int = 0) -> bytes:
    lines = [
        {
            "custom_id": f"job-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": build_messages(RUBRIC, f"Essay number {i}. Trees are good."),
                "response_format": response_format(RUBRIC),
            },
        }
        for i in range(start, start + n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.fixture
def batch_sim():
    simulator = LLMSimulator(SimulatorConfig(seed=1), BatchConfig())
    with simulator.serve_in_thread():
        client = openai.OpenAI(api_key="x", base_url=simulator.base_url, max_retries=0)
        yield simulator, client
        client.close()


def _create(client: openai.OpenAI, content: bytes, **metadata):
    upload = client.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata or None,
    )


def _records(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_a_batch_answers_every_line_with_a_grade_once_its_time_is_up(batch_sim) -> None:
    simulator, client = batch_sim
    simulator.batches.config.seconds = 0.5
    batch = _create(client, _lines(20), run="r1")
    assert batch.status == "in_progress" and batch.request_counts.total == 20
    assert batch.metadata == {"run": "r1"}
    assert client.batches.retrieve(batch.id).status == "in_progress"
    time.sleep(0.6)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 20
    assert done.error_file_id is None
    records = _records(client, done.output_file_id)
    assert sorted(r["custom_id"] for r in records) == sorted(f"job-{i}" for i in range(20))
    # each line's body parses, with the grader's own checks, into a grade within the rubric
    for record in records:
        body = record["response"]["body"]
        assert record["response"]["status_code"] == 200 and body["model"].startswith("simulated:")
        reply = ModelReply(
            content=body["choices"][0]["message"]["content"],
            finish_reason="stop",
            model=body["model"],
            prompt_tokens=1,
            completion_tokens=1,
            attempts=1,
        )
        assert 0 <= parse_reply(reply, RUBRIC).total_score <= RUBRIC.max_score
    listed = client.batches.list(limit=5)
    assert [b.id for b in listed.data] == [batch.id]
    assert len(simulator.requests) == 20


def test_error_lines_out_of_order_output_and_cancel(batch_sim) -> None:
    simulator, client = batch_sim
    simulator.config.script = ["429", "ok", "500", "400"] + ["ok"] * 16
    simulator.batches.config.shuffle = True
    batch = client.batches.retrieve(_create(client, _lines(20)).id)
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (17, 3)
    errors = _records(client, batch.error_file_id)
    assert sorted(e["response"]["status_code"] for e in errors) == [400, 429, 500]
    outputs = [r["custom_id"] for r in _records(client, batch.output_file_id)]
    assert outputs != sorted(outputs, key=lambda c: int(c.split("-")[1]))  # shuffled

    simulator.batches.config.seconds = 60
    slow = _create(client, _lines(3))
    assert client.batches.cancel(slow.id).status == "cancelling"
    assert client.batches.retrieve(slow.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="cannot cancel"):
        client.batches.cancel(slow.id)


def test_validation_failures_and_expiry_with_part_done(batch_sim) -> None:
    simulator, client = batch_sim
    mixed = _lines(2) + _lines(1, model="gpt-4o", start=2)
    failed = _create(client, mixed)
    assert failed.status == "failed" and failed.errors.data[0].code == "mixed_models"
    duplicate = _create(client, _lines(2) + _lines(1))
    assert duplicate.status == "failed"
    assert duplicate.errors.data[0].code == "duplicate_custom_id"
    simulator.batches.config.fail_validation = True
    assert _create(client, _lines(2)).status == "failed"
    simulator.batches.config.fail_validation = False

    simulator.batches.config.seconds = 60
    simulator.batches.config.expire_after_seconds = 0.2
    simulator.batches.config.expire_done_share = 0.25
    batch = _create(client, _lines(8))
    time.sleep(0.3)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired"
    assert (expired.request_counts.completed, expired.request_counts.failed) == (2, 6)
    codes = {e["error"]["code"] for e in _records(client, expired.error_file_id)}
    assert codes == {"batch_expired"}
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_downloads_can_fail_or_be_slow(batch_sim) -> None:
    simulator, client = batch_sim
    batch = client.batches.retrieve(_create(client, _lines(2)).id)
    simulator.batches.config.download = "fail"
    with pytest.raises(openai.InternalServerError):
        client.files.content(batch.output_file_id)
    simulator.batches.config.download, simulator.batches.config.slow_seconds = "slow", 0.3
    started = time.monotonic()
    assert len(_records(client, batch.output_file_id)) == 2
    assert time.monotonic() - started >= 0.3
    assert client.files.delete(batch.output_file_id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(batch.output_file_id)


def test_batches_survive_a_restart_only_when_told_to(tmp_path) -> None:
    state = tmp_path / "batches.json"
    first = LLMSimulator(batch_config=BatchConfig(seconds=60, state_file=str(state)))
    with first.serve_in_thread():
        client = openai.OpenAI(api_key="x", base_url=first.base_url, max_retries=0)
        batch_id = _create(client, _lines(3)).id
        client.close()
    remembering = LLMSimulator(batch_config=BatchConfig(seconds=0, state_file=str(state)))
    with remembering.serve_in_thread():
        client = openai.OpenAI(api_key="x", base_url=remembering.base_url, max_retries=0)
        assert client.batches.retrieve(batch_id).status == "completed"
        client.close()
    forgetful = LLMSimulator()
    with forgetful.serve_in_thread():
        client = openai.OpenAI(api_key="x", base_url=forgetful.base_url, max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve(batch_id)
        client.close()
