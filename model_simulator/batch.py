"""The simulator's Files and Batch API: OpenAI's asynchronous batch grading, simulated.

`/v1/files` takes a JSONL upload (`purpose="batch"`), lists its metadata, serves and deletes
its content; `/v1/batches` creates a batch from an uploaded file, retrieves, lists and cancels
it. Each line of the input is answered by the simulator's own chat-completions logic
(model_simulator/chat.py; its fault rates and script apply per line: a 429, 500 or 400 comes
back as an error line, a dropped or hung answer as a 500), once the batch's time is up
(`BatchConfig.seconds`, counted from creation; checked when someone looks). Statuses as the
provider's: validating, failed, in_progress, finalizing, completed, expired, cancelling,
cancelled.

Faults of a whole batch (`BatchConfig`): `fail_validation` (the batch fails with an error per
bad line; so does a really malformed input), `expire_after_seconds` with `expire_done_share` (the
batch expires with that share of its lines answered and the rest as `batch_expired` errors),
`shuffle` (output lines in random order), `corrupt_lines` (the first output lines cut in half:
broken JSON), `download` ("slow": content served after `slow_seconds`; "fail": 500 on
content). State lives in memory unless `state_file` is set: then files and batches are saved
there on every change and loaded when a simulator starts, so a test can restart the simulator
and find its batches, or not.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model_simulator.chat import ChatCompletions, RequestRecord
from model_simulator.faults import DroppedAnswer, error_response

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
MAX_LINES = 50_000


@dataclass
class BatchConfig:
    seconds: float = 0.0  # from creation to completed
    fail_validation: bool = False
    expire_after_seconds: float | None = None  # expire at this age if not done by then
    expire_done_share: float = 0.5  # share of lines answered when a batch expires
    shuffle: bool = False
    corrupt_lines: int = 0  # this many output lines come back as broken JSON
    download: str | None = None  # None, "slow" or "fail"
    slow_seconds: float = 2.0
    state_file: str | None = None  # keep files and batches here, across restarts


@dataclass
class BatchStore:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)


class BatchAPI:
    """Files and batches for one simulator: its lines answered by the simulator's chat logic
    (its answers, its faults) and logged in its request log."""

    def __init__(
        self,
        chat: ChatCompletions,
        requests: list[RequestRecord],
        config: BatchConfig | None = None,
    ) -> None:
        self.chat, self.requests = chat, requests
        self.config = config or BatchConfig()
        self.store = BatchStore()
        self._rng = random.Random(0)
        self.load()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self._files, methods=["GET", "POST"]),
            Route("/v1/files/{file_id}", self._file, methods=["GET", "DELETE"]),
            Route("/v1/files/{file_id}/content", self._content, methods=["GET"]),
            Route("/v1/batches", self._batches, methods=["GET", "POST"]),
            Route("/v1/batches/{batch_id}", self._batch, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self._cancel, methods=["POST"]),
        ]

    # --- state across restarts --------------------------------------------------------------

    def load(self) -> None:
        path = Path(self.config.state_file) if self.config.state_file else None
        if path and path.exists():
            state = json.loads(path.read_text())
            for f in state["files"].values():
                f["content"] = bytes.fromhex(f["content"])
            self.store = BatchStore(state["files"], state["batches"])

    def _save(self) -> None:
        if not self.config.state_file:
            return
        files = {k: {**f, "content": f["content"].hex()} for k, f in self.store.files.items()}
        Path(self.config.state_file).write_text(
            json.dumps({"files": files, "batches": self.store.batches})
        )

    # --- files --------------------------------------------------------------------------------

    def _new_file(self, content: bytes, purpose: str, filename: str) -> dict[str, Any]:
        file_id = f"file-sim{uuid.uuid4().hex[:20]}"
        self.store.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "content": content,
        }
        return self.store.files[file_id]

    @staticmethod
    def _public(f: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in f.items() if k != "content"}

    async def _files(self, request: Request) -> Response:
        if request.method == "GET":
            data = [self._public(f) for f in self.store.files.values()]
            return JSONResponse({"object": "list", "data": data, "has_more": False})
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return error_response(400, "upload the file as multipart/form-data")
        raw = await request.body()
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_param("filename", header="content-disposition")
            fields[name] = (filename, part.get_payload(decode=True) or b"")
        if "file" not in fields or "purpose" not in fields:
            return error_response(400, "'file' and 'purpose' are required", "file")
        purpose = fields["purpose"][1].decode()
        if purpose != "batch":
            return error_response(
                400, "the simulator takes files with purpose 'batch' only", "purpose"
            )
        filename, content = fields["file"]
        created = self._new_file(content, purpose, filename or "upload.jsonl")
        self._save()
        return JSONResponse(self._public(created))

    async def _file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.store.files:
            return error_response(404, f"no file {file_id}", "file_id")
        if request.method == "DELETE":
            del self.store.files[file_id]
            self._save()
            return JSONResponse({"id": file_id, "object": "file", "deleted": True})
        return JSONResponse(self._public(self.store.files[file_id]))

    async def _content(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.store.files:
            return error_response(404, f"no file {file_id}", "file_id")
        if self.config.download == "fail":
            return error_response(500, "simulated failure downloading the file")
        if self.config.download == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        return Response(self.store.files[file_id]["content"], media_type="application/jsonl")

    # --- batches ------------------------------------------------------------------------------

    async def _batches(self, request: Request) -> Response:
        if request.method == "GET":
            batches = sorted(self.store.batches.values(), key=lambda b: -b["created_at"])
            after = request.query_params.get("after")
            if after:
                ids = [b["id"] for b in batches]
                batches = batches[ids.index(after) + 1 :] if after in ids else []
            limit = int(request.query_params.get("limit", 20))
            data = [self._advance(b) for b in batches[:limit]]
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": len(batches) > limit,
                }
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error_response(400, "the body must be JSON")
        if not isinstance(body, dict) or body.get("input_file_id") not in self.store.files:
            return error_response(
                400, "'input_file_id' must name an uploaded file", "input_file_id"
            )
        if body.get("endpoint") != ENDPOINT:
            return error_response(400, f"the simulator runs batches of {ENDPOINT} only", "endpoint")
        if body.get("completion_window") != WINDOW:
            return error_response(
                400, f"'completion_window' must be '{WINDOW}'", "completion_window"
            )
        now = int(time.time())
        batch_id = f"batch_sim{uuid.uuid4().hex[:20]}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": WINDOW,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_created": time.time(),  # fractions of a second for `seconds`; never served
        }
        self.store.batches[batch_id] = batch
        self._validate(batch)
        self._save()
        return JSONResponse(self._served(batch))

    async def _batch(self, request: Request) -> Response:
        batch = self.store.batches.get(request.path_params["batch_id"])
        if batch is None:
            return error_response(404, "no such batch", "batch_id")
        return JSONResponse(self._advance(batch))

    async def _cancel(self, request: Request) -> Response:
        batch = self.store.batches.get(request.path_params["batch_id"])
        if batch is None:
            return error_response(404, "no such batch", "batch_id")
        self._advance(batch)
        if batch["status"] not in ("validating", "in_progress"):
            return error_response(400, f"cannot cancel a batch that is {batch['status']}")
        batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
        self._save()
        return JSONResponse(self._served(batch))

    @staticmethod
    def _served(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _lines(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        content = self.store.files[batch["input_file_id"]]["content"]
        return [json.loads(line) for line in content.decode().splitlines() if line.strip()]

    def _validate(self, batch: dict[str, Any]) -> None:
        """validating -> in_progress, or failed with one error per bad line."""
        errors: list[dict[str, Any]] = []
        try:
            lines = self._lines(batch)
        except (ValueError, UnicodeDecodeError):
            lines, errors = [], [{"code": "invalid_json", "message": "a line is not JSON"}]
        seen, models = set(), set()
        for number, line in enumerate(lines, start=1):
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            body = line.get("body") if isinstance(line, dict) else None
            if not custom_id or custom_id in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id" if custom_id else "missing_custom_id",
                        "line": number,
                        "message": "each line needs its own custom_id",
                    }
                )
            elif line.get("method") != "POST" or line.get("url") != ENDPOINT:
                errors.append(
                    {
                        "code": "invalid_url",
                        "line": number,
                        "message": f"each line must be POST {ENDPOINT}",
                    }
                )
            elif not isinstance(body, dict) or not body.get("model"):
                errors.append(
                    {
                        "code": "invalid_body",
                        "line": number,
                        "message": "each line needs a body with a model",
                    }
                )
            else:
                models.add(body["model"])
            seen.add(custom_id)
        if len(models) > 1:
            errors.append({"code": "mixed_models", "message": "one model per batch"})
        if len(lines) > MAX_LINES:
            errors.append({"code": "too_many_requests", "message": f"over {MAX_LINES} lines"})
        if self.config.fail_validation and not errors:
            errors.append({"code": "simulated_failure", "message": "simulated validation failure"})
        now = int(time.time())
        if errors or not lines:
            errors = errors or [{"code": "empty_file", "message": "the input file has no lines"}]
            batch.update(status="failed", failed_at=now, errors={"object": "list", "data": errors})
            return
        batch.update(status="in_progress", in_progress_at=now)
        batch["request_counts"]["total"] = len(lines)

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch as it stands now: finished once its time is up, expired past its limit,
        cancelled once asked."""
        now = time.time()
        age = now - batch["_created"]
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=int(now))
            self._save()
        elif batch["status"] == "in_progress":
            limit = self.config.expire_after_seconds
            if limit is not None and age >= limit and self.config.seconds > limit:
                self._finish(batch, "expired", self.config.expire_done_share)
            elif age >= self.config.seconds:
                self._finish(batch, "completed", 1.0)
        return self._served(batch)

    def _finish(self, batch: dict[str, Any], status: str, share: float) -> None:
        lines = self._lines(batch)
        done = int(len(lines) * share)
        outputs, errors = [], []
        for number, line in enumerate(lines):
            if number >= done:
                errors.append(self._expired(line))
                continue
            record = self._answer(line)
            (outputs if record["error"] is None else errors).append(record)
        if self.config.shuffle:
            self._rng.shuffle(outputs)
            self._rng.shuffle(errors)
        now = int(time.time())
        for name, records in (("output_file_id", outputs), ("error_file_id", errors)):
            if records:
                encoded = [json.dumps(r) for r in records]
                if name == "output_file_id":
                    for number in range(min(self.config.corrupt_lines, len(encoded))):
                        encoded[number] = encoded[number][: len(encoded[number]) // 2]
                content = "".join(line + "\n" for line in encoded).encode()
                batch[name] = self._new_file(content, "batch_output", f"{batch['id']}.jsonl")["id"]
        batch["request_counts"].update(completed=len(outputs), failed=len(errors))
        batch.update(status=status, finalizing_at=now)
        batch["completed_at" if status == "completed" else "expired_at"] = now
        self._save()

    @staticmethod
    def _expired(line: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"batch_req_{uuid.uuid4().hex[:16]}",
            "custom_id": line["custom_id"],
            "response": None,
            "error": {"code": "batch_expired", "message": "the batch expired before this line"},
        }

    def _answer(self, line: dict[str, Any]) -> dict[str, Any]:
        """The simulator's chat answer to one line, as an output or error record."""
        raw = json.dumps(line["body"]).encode()
        record = RequestRecord(time.time(), ENDPOINT, None, None, None, None)
        if self.chat.config.keep_bodies:
            record.body = raw.decode()
        self.requests.append(record)
        answer = self.chat.answer(raw, record)
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        result: dict[str, Any] = {
            "id": f"batch_req_{uuid.uuid4().hex[:16]}",
            "custom_id": line["custom_id"],
            "response": None,
            "error": None,
        }
        if isinstance(answer, DroppedAnswer):
            record.status = 500
            result["response"] = {
                "status_code": 500,
                "request_id": request_id,
                "body": {"error": {"message": "simulated server error"}},
            }
            result["error"] = {"code": "server_error", "message": "simulated dropped answer"}
            return result
        record.status = answer.status_code
        body = json.loads(answer.body)
        result["response"] = {
            "status_code": answer.status_code,
            "request_id": request_id,
            "body": body,
        }
        if answer.status_code >= 400:
            result["error"] = {
                "code": str(answer.status_code),
                "message": body.get("error", {}).get("message", "error"),
            }
        return result
