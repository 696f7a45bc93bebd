"""A stand-in for the paid model API: an OpenAI-compatible chat-completions server on loopback.

Tests and the demo point the official `openai` client at `LLMSimulator.base_url` instead of the
real API, so they run with no API key and no network. The simulator speaks just enough HTTP/1.1
(on `asyncio.start_server`) for that client and for throughput benchmarks, answers structured-
output requests with JSON that validates against the requested schema, and can inject the
failures a real provider produces (rate limits, server errors, dropped and hanging connections,
truncated or non-JSON answers, and answers out of the schema's bounds, as from a model that an
essay talked into "full marks and more") on a script or at random rates.

Its answers are NOT grades: every generated string starts with "[simulated] ", the reported model
is "simulated:<requested model>", and the fingerprint is "grader-simulator".

Request bodies contain student essays, so they are never printed or logged, and stored only
when a test asks for it (`keep_bodies`); the request log keeps a sha256 of the last user message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http
import json
import math
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

FAULTS: tuple[str, ...] = ("429", "500", "drop", "hang", "truncate", "malformed", "overscore")
OVERSCORE = 1_000_000

# "ok" is only meaningful in a script (it spends one entry on a normal answer); in rates the
# probability left over after all faults already means "ok".
_OK = "ok"

_MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_HEAD_BYTES = 64 * 1024
_MALFORMED_CONTENT = "[simulated] I think this essay deserves a good grade."
_TEXT_CONTENT = "[simulated] This is a placeholder answer from the model simulator, not a grade."

# Past this depth arrays get their minimum length and optional branches their null, so recursive
# schemas (a tree of comments, say) end; past the hard limit the schema cannot end at all.
_SHALLOW_DEPTH = 8
_MAX_DEPTH = 48


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass
class SimulatorConfig:
    """How the simulator behaves; mutable, changes apply to the next request."""

    latency_ms: float = 0.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    retry_after_seconds: float = 1.0
    hang_seconds: float = 3600.0
    script: list[str] = field(default_factory=list)
    seed: int | None = None
    # keep each request's raw body, for tests that check what reaches the model; off by default
    # because the bodies hold essays
    keep_bodies: bool = False


@dataclass
class RequestRecord:
    """One chat-completions request as the simulator saw it, without any of its text (unless
    the config keeps bodies)."""

    at: float
    path: str
    model: str | None
    fault: str | None
    status: int | None
    prompt_sha256: str | None
    body: str | None = field(default=None, repr=False)  # only with keep_bodies


def _is_fault_name(name: str) -> bool:
    if name in FAULTS:
        return True
    return len(name) == 3 and name.isdigit() and 400 <= int(name) <= 599


def _fault_name_error(name: str) -> str:
    return (
        f"unknown fault {name!r}: expected one of {', '.join(FAULTS)} "
        "or an HTTP error status from 400 to 599"
    )


def _check_rates(rates: object) -> dict[str, float]:
    if not isinstance(rates, dict):
        raise ValueError("fault_rates must be an object mapping fault names to probabilities")
    checked: dict[str, float] = {}
    for name, rate in rates.items():
        if not isinstance(name, str) or not _is_fault_name(name):
            raise ValueError(_fault_name_error(str(name)))
        checked[name] = _check_number(f"rate of fault {name!r}", rate, maximum=1.0)
    # A little slack so that rates like 0.1+0.2+0.7 are not refused for float rounding.
    if sum(checked.values()) > 1.0 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(checked.values()):g}, more than 1")
    return checked


def _check_number(what: str, value: object, maximum: float = math.inf) -> float:
    # bool is an int in Python but never a sensible rate or duration.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > maximum:
        bounds = f"between 0 and {maximum:g}" if math.isfinite(maximum) else "0 or more"
        raise ValueError(f"{what} must be {bounds}, got {value!r}")
    return number


def _check_script(script: object) -> list[str]:
    if not isinstance(script, list):
        raise ValueError("script must be a list of fault names")
    for name in script:
        if not isinstance(name, str) or not (name == _OK or _is_fault_name(name)):
            raise ValueError(_fault_name_error(str(name)) + ' (or "ok")')
    return list(script)


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _check_seed(seed: object) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be a whole number or null, got {seed!r}")
    return seed


_CHECKERS: dict[str, Any] = {
    "latency_ms": lambda v: _check_number("latency_ms", v),
    "fault_rates": _check_rates,
    "retry_after_seconds": lambda v: _check_number("retry_after_seconds", v),
    "hang_seconds": lambda v: _check_number("hang_seconds", v),
    "script": _check_script,
    "seed": _check_seed,
    "keep_bodies": lambda v: _check_flag("keep_bodies", v),
}


def _check_config(config: SimulatorConfig) -> None:
    for f in fields(SimulatorConfig):
        _CHECKERS[f.name](getattr(config, f.name))


def parse_fault_rates(spec: str) -> dict[str, float]:
    """Parse "429=0.1,500=0.05,drop=0.01" into {"429": 0.1, "500": 0.05, "drop": 0.01}.

    Raises ValueError with a one-line message on an unknown fault, a rate outside 0..1, a repeated
    fault or rates adding up to more than 1. An empty spec means no faults.
    """
    rates: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise ValueError(f"fault rate {item!r} must look like NAME=RATE, e.g. 429=0.1")
        if not _is_fault_name(name):
            raise ValueError(_fault_name_error(name))
        if name in rates:
            raise ValueError(f"fault {name!r} is given more than once")
        try:
            rate = float(raw)
        except ValueError:
            raise ValueError(f"rate of fault {name!r} must be a number, got {raw!r}") from None
        rates[name] = rate
    return _check_rates(rates)


# --------------------------------------------------------------------------------------------
# Answers


class _SchemaError(ValueError):
    """The requested schema cannot be answered (bad $ref, empty range, endless recursion)."""


def _content_text(content: object) -> str:
    """The text of a message's content, which is a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _is_null_schema(schema: object) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    return kind == "null" or kind == ["null"] or ("const" in schema and schema["const"] is None)


class _AnswerBuilder:
    """Builds a value valid against a JSON schema, drawing choices from a seeded RNG."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def value(self, schema: object, name: str, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _SchemaError("schema nests too deeply to answer (recursion with no way out?)")
        if schema is True or schema == {}:
            return self._text({}, name)
        if not isinstance(schema, dict):
            raise _SchemaError(f"schema for {name!r} must be an object")
        shallow = depth > _SHALLOW_DEPTH

        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value({**self._resolve(schema["$ref"]), **rest}, name, depth + 1)
        if "allOf" in schema:
            return self.value(self._merge_all_of(schema), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(self._pick_branch(branches, shallow), name, depth + 1)

        kind = schema.get("type")
        if isinstance(kind, list):
            if shallow and "null" in kind:
                return None
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = self._infer_type(schema)

        if kind == "object":
            properties = schema.get("properties") or {}
            return {key: self.value(sub, key, depth + 1) for key, sub in properties.items()}
        if kind == "array":
            return self._array(schema, name, depth, shallow)
        if kind == "string":
            return self._text(schema, name)
        if kind == "integer":
            return self._integer(schema, name)
        if kind == "number":
            return self._number(schema, name)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        raise _SchemaError(f"unsupported type {kind!r} for {name!r}")

    def _resolve(self, ref: object) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _SchemaError(f"only local $ref like '#/$defs/Name' is supported, got {ref!r}")
        target: Any = self.root
        for token in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise _SchemaError(f"cannot resolve $ref {ref!r}")
            target = target[token]
        if not isinstance(target, dict):
            raise _SchemaError(f"$ref {ref!r} does not point to a schema")
        return target

    def _merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            for _ in range(_MAX_DEPTH):
                if not (isinstance(sub, dict) and "$ref" in sub):
                    break
                rest = {k: v for k, v in sub.items() if k != "$ref"}
                sub = {**self._resolve(sub["$ref"]), **rest}
            else:
                raise _SchemaError("$ref chain in allOf does not end")
            if not isinstance(sub, dict):
                continue
            for key, val in sub.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **val}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *val]
                else:
                    merged.setdefault(key, val)
        return merged

    @staticmethod
    def _pick_branch(branches: list[Any], shallow: bool) -> Any:
        if shallow:
            for branch in branches:
                if _is_null_schema(branch):
                    return branch
        for branch in branches:
            if not _is_null_schema(branch):
                return branch
        return branches[0]

    @staticmethod
    def _infer_type(schema: dict[str, Any]) -> str:
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "number"
        return "string"

    def _array(self, schema: dict[str, Any], name: str, depth: int, shallow: bool) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        low = schema.get("minItems", 1)
        high = schema.get("maxItems")
        if high is None:
            high = max(low, 3)
        low = min(low, high)
        # An explicit minItems of 0 still gets an item when it can: an empty list says little.
        count = low if shallow else self.rng.randint(max(low, min(1, high)), high)
        items = [self.value(sub, name, depth + 1) for sub in prefix[:count]]
        item_schema = schema.get("items", True)
        if item_schema is False:
            return items
        seen = {json.dumps(i, sort_keys=True) for i in items}
        attempts = 0
        while len(items) < count:
            item = self.value(item_schema, name, depth + 1)
            attempts += 1
            key = json.dumps(item, sort_keys=True)
            # A few retries for uniqueItems; if the item schema cannot produce enough distinct
            # values, a shorter array is still better than looping forever.
            if schema.get("uniqueItems") and key in seen:
                if attempts > 20 * count:
                    break
                continue
            seen.add(key)
            items.append(item)
        return items

    def _text(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2000-01-01T00:00:00Z"
        if fmt == "date":
            return "2000-01-01"
        if fmt == "time":
            return "00:00:00Z"
        if fmt == "email":
            return "simulated@example.com"
        if fmt in ("uri", "url"):
            return "https://example.com/simulated"
        if fmt == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        tag = f"{self.rng.getrandbits(32):08x}"
        text = f"[simulated] placeholder {name or 'text'} #{tag}, not a real assessment."
        min_len = schema.get("minLength", 0)
        max_len = schema.get("maxLength")
        if len(text) < min_len:
            text = text.ljust(min_len, ".")
        if max_len is not None:
            text = text[:max_len]
        return text

    @staticmethod
    def _bounds(schema: dict[str, Any]) -> tuple[float, bool, float, bool, bool, bool]:
        """(low, low_exclusive, high, high_exclusive, has_low, has_high) from the keywords,
        accepting both draft-4 boolean and draft-6+ numeric exclusive bounds."""

        def side(inclusive_key: str, exclusive_key: str, tighter: Any) -> tuple[Any, bool]:
            inclusive = schema.get(inclusive_key)
            exclusive = schema.get(exclusive_key)
            if exclusive is True:
                return inclusive, inclusive is not None
            if isinstance(exclusive, bool) or exclusive is None:
                return inclusive, False
            if inclusive is None or tighter(exclusive, inclusive):
                return exclusive, True
            return inclusive, False

        low, low_ex = side("minimum", "exclusiveMinimum", lambda a, b: a >= b)
        high, high_ex = side("maximum", "exclusiveMaximum", lambda a, b: a <= b)
        has_low, has_high = low is not None, high is not None
        if not has_low and not has_high:
            low, high = 0, 10
        elif not has_low:
            low = min(0, high - 10)
        elif not has_high:
            high = max(10, low + 10)
        return float(low), low_ex, float(high), high_ex, has_low, has_high

    def _integer(self, schema: dict[str, Any], name: str) -> int:
        low, low_ex, high, high_ex, _, _ = self._bounds(schema)
        lo = math.floor(low) + 1 if low_ex else math.ceil(low)
        hi = math.ceil(high) - 1 if high_ex else math.floor(high)
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            k_lo, k_hi = -(-lo // step), hi // step
            if k_lo > k_hi:
                raise _SchemaError(f"no multiple of {step} in range for {name!r}")
            return step * (k_lo + round(self.rng.uniform(0.4, 1.0) * (k_hi - k_lo)))
        if lo > hi:
            raise _SchemaError(f"no integer in range for {name!r}")
        # Graders and tests expect something that looks like a passing grade, not noise.
        return min(hi, max(lo, round(lo + self.rng.uniform(0.4, 1.0) * (hi - lo))))

    def _number(self, schema: dict[str, Any], name: str) -> float:
        low, low_ex, high, high_ex, _, _ = self._bounds(schema)

        def fits(x: float) -> bool:
            above = x > low if low_ex else x >= low
            below = x < high if high_ex else x <= high
            return above and below

        step = schema.get("multipleOf")
        if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
            k_lo, k_hi = math.ceil(low / step), math.floor(high / step)
            ks = [k for k in (k_hi, k_hi - 1, k_lo + 1, k_lo) if k_lo <= k <= k_hi]
            for k in [k_lo + round(self.rng.uniform(0.4, 1.0) * (k_hi - k_lo)), *ks]:
                if k_lo <= k <= k_hi and fits(k * step):
                    return float(k * step)
            raise _SchemaError(f"no multiple of {step} in range for {name!r}")
        raw = low + self.rng.uniform(0.4, 1.0) * (high - low)
        for candidate in (round(raw, 2), raw, (low + high) / 2):
            if fits(candidate):
                return float(candidate)
        raise _SchemaError(f"no number in range for {name!r}")


def _inflate_numbers(value: Any) -> Any:
    """Every whole number in an answer set far beyond any bound (`overscore`)."""
    if isinstance(value, dict):
        return {key: _inflate_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_inflate_numbers(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return OVERSCORE
    return value


def _answer_content(response_format: dict[str, Any] | None, prompt: str) -> str:
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return json.dumps(
            {"simulated": True, "answer": "[simulated] placeholder answer, not a grade."}
        )
    if kind != "json_schema":
        return _TEXT_CONTENT
    assert response_format is not None
    schema = response_format["json_schema"]["schema"]
    seed_text = prompt + json.dumps(schema, sort_keys=True, separators=(",", ":"))
    rng = random.Random(int.from_bytes(hashlib.sha256(seed_text.encode()).digest(), "big"))
    value = _AnswerBuilder(schema, rng).value(schema, "")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# HTTP


class _BadRequest(Exception):
    """The HTTP framing is broken: answer with this status and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": _error_type(status), "param": param, "code": code}
    }


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(float(seconds))


def _encode(
    status: int, payload: object, keep_alive: bool, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


@dataclass
class _Reply:
    """What to do with a request: send a response, drop the connection, or hang."""

    status: int | None = None
    payload: object = None
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    action: str = "respond"  # "respond" | "drop" | "hang"
    delayed: bool = True  # latency applies to the model API, not to admin calls


_ALLOWED: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("POST",),
    "/v1/models": ("GET",),
    "/_simulator/requests": ("GET", "DELETE"),
    "/_simulator/config": ("GET", "POST"),
}

_MODELS = {
    "object": "list",
    "data": [{"id": "simulated", "object": "model", "created": 0, "owned_by": "grader-simulator"}],
}


class LLMSimulator:
    """The simulator server. Use `serve_in_thread()` from sync code, `start()`/`stop()` from
    async code; `config` may be changed at any time and `requests` read at any time."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        _check_config(self.config)
        self.requests: list[RequestRecord] = []
        self._rng = random.Random(self.config.seed)
        self._rng_seed = self.config.seed
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    # ---- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("simulator is already running")
        # A deep backlog: benchmarks open hundreds of connections at once, and a full backlog
        # turns into 1 s SYN retransmits that would be measured as model latency.
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, backlog=4096, limit=_MAX_HEAD_BYTES
        )
        self._host = host
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Server.close() leaves accepted connections open (and Python 3.12+ wait_closed() would
        # wait for them), so end them here, hanging ones included.
        tasks = list(self._connections)
        for task, writer in self._connections.items():
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connections.clear()
        await server.wait_closed()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("simulator has not been started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/v1"

    @contextlib.contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[LLMSimulator]:
        """Serve from a daemon thread with its own event loop while the block runs."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="llm-simulator", daemon=True)
        thread.start()
        started.wait()
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            try:
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)

    # ---- connections

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._server is None:
            # Accepted just before stop(): stop() could not see this connection to end it.
            writer.transport.abort()
            return
        self._connections[task] = writer
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except _BadRequest as bad:
                    payload = _error_body(bad.status, bad.message)
                    writer.write(_encode(bad.status, payload, keep_alive=False))
                    await writer.drain()
                    return
                if request is None:
                    return
                try:
                    reply = self._handle(request)
                except Exception:
                    # A bug here must not kill the server; the message names no request data.
                    payload = _error_body(500, "simulator internal error")
                    reply = _Reply(500, payload, close=True)
                if not await self._send(reply, request, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # The client went away, or stop() is ending this connection: nothing to answer.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # closed between requests (or mid-head): no one to answer
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, "request head too large") from None
        lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "malformed header line")
            name = name.lower()
            value = value.strip()
            if name == "content-length" and name in headers and headers[name] != value:
                raise _BadRequest(400, "conflicting Content-Length headers")
            headers[name] = value

        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)

        if "transfer-encoding" in headers:
            raise _BadRequest(411, "chunked request bodies are not supported; send Content-Length")
        raw_length = headers.get("content-length")
        if raw_length is None:
            if method == "POST":
                raise _BadRequest(411, "POST requests need a Content-Length header")
            length = 0
        elif not raw_length.isdigit():
            raise _BadRequest(400, "malformed Content-Length header")
        else:
            length = int(raw_length)
        if length > _MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        if length and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        return _Request(method, path, headers, body, keep_alive)

    async def _send(
        self,
        reply: _Reply,
        request: _Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Carry out the reply; True if the connection stays open for another request."""
        if reply.delayed and self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if reply.action == "drop":
            writer.transport.abort()
            return False
        if reply.action == "hang":
            await self._hang(reader)
            return False
        keep_alive = request.keep_alive and not reply.close
        writer.write(_encode(reply.status or 500, reply.payload, keep_alive, reply.headers))
        await writer.drain()
        return keep_alive

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        async def until_client_leaves() -> None:
            while await reader.read(65536):
                pass

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until_client_leaves(), self.config.hang_seconds)

    # ---- routing

    def _handle(self, request: _Request) -> _Reply:
        allowed = _ALLOWED.get(request.path)
        if allowed is None:
            message = f"simulated API has no route {request.method} {request.path}"
            return _Reply(404, _error_body(404, message))
        if request.method not in allowed:
            message = f"method {request.method} is not allowed on {request.path}"
            return _Reply(405, _error_body(405, message), headers=(("Allow", ", ".join(allowed)),))
        if request.path == "/v1/chat/completions":
            return self._chat_completion(request)
        if request.path == "/v1/models":
            return _Reply(200, _MODELS)
        return self._admin(request)

    def _admin(self, request: _Request) -> _Reply:
        if request.path == "/_simulator/requests":
            if request.method == "DELETE":
                self.requests.clear()
                return _Reply(200, {"cleared": True}, delayed=False)
            # never the bodies over HTTP: they hold essays
            log = [{k: v for k, v in asdict(r).items() if k != "body"} for r in list(self.requests)]
            return _Reply(200, log, delayed=False)
        if request.method == "GET":
            return _Reply(200, asdict(self.config), delayed=False)
        try:
            update = json.loads(request.body)
            if not isinstance(update, dict):
                raise ValueError("config update must be a JSON object")
            known = {f.name for f in fields(SimulatorConfig)}
            unknown = sorted(set(update) - known)
            if unknown:
                raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
            # Check every field before changing any, so a bad update changes nothing.
            checked = {name: _CHECKERS[name](value) for name, value in update.items()}
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return _Reply(400, _error_body(400, str(exc).splitlines()[0]), delayed=False)
        for name, value in checked.items():
            setattr(self.config, name, value)
        if "seed" in checked:
            # Setting the seed over the admin API restarts the fault sequence even if unchanged.
            self._rng = random.Random(self.config.seed)
            self._rng_seed = self.config.seed
        return _Reply(200, asdict(self.config), delayed=False)

    def _pick_fault(self) -> str | None:
        script = self.config.script
        if script:
            fault = script.pop(0)
            return None if fault == _OK else fault
        if self.config.seed != self._rng_seed:
            self._rng = random.Random(self.config.seed)
            self._rng_seed = self.config.seed
        rates = self.config.fault_rates
        if not rates:
            return None
        roll = self._rng.random()
        for name, rate in rates.items():
            if roll < rate:
                return name
            roll -= rate
        return None

    def _chat_completion(self, request: _Request) -> _Reply:
        record = RequestRecord(time.time(), request.path, None, None, None, None)
        if self.config.keep_bodies:
            record.body = request.body.decode("utf-8", "replace")
        self.requests.append(record)
        reply = self._chat_reply(request, record)
        record.status = reply.status if reply.action == "respond" else None
        return reply

    def _chat_reply(self, request: _Request, record: RequestRecord) -> _Reply:
        def invalid(message: str, param: str | None = None) -> _Reply:
            return _Reply(400, _error_body(400, message, param=param))

        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return invalid("request body is not valid JSON")
        if not isinstance(body, dict):
            return invalid("request body must be a JSON object")
        model = body.get("model")
        if isinstance(model, str):
            record.model = model
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return invalid("'messages' is required and must be a non-empty list", "messages")
        if not all(isinstance(m, dict) for m in messages):
            return invalid("each message must be an object", "messages")
        user_texts = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt = user_texts[-1] if user_texts else ""
        if user_texts:
            record.prompt_sha256 = hashlib.sha256(prompt.encode()).hexdigest()
        if not isinstance(model, str) or not model:
            return invalid("'model' is required and must be a string", "model")
        if body.get("stream"):
            return invalid("the simulator does not support streaming", "stream")

        response_format = body.get("response_format")
        problem = _check_response_format(response_format)
        if problem:
            return invalid(problem, "response_format")
        try:
            content = _answer_content(response_format, prompt)
        except _SchemaError as exc:
            return invalid(f"cannot answer this schema: {exc}", "response_format")
        except (TypeError, ValueError, AttributeError, KeyError):
            # Keywords of the wrong JSON type (a string minItems, say) are the caller's error.
            return invalid("cannot answer this schema: a keyword has a value of the wrong type")

        # Faults come after validation so that a script is spent only on requests a real API
        # would have accepted.
        fault = self._pick_fault()
        record.fault = fault
        finish_reason = "stop"
        if fault is None:
            pass
        elif fault == "drop":
            return _Reply(action="drop")
        elif fault == "hang":
            return _Reply(action="hang")
        elif fault == "truncate":
            content = content[: len(content) // 2]
            finish_reason = "length"
        elif fault == "malformed":
            content = _MALFORMED_CONTENT
        elif fault == "overscore":
            content = json.dumps(_inflate_numbers(json.loads(content)))
        elif fault == "429":
            message = "simulated rate limit: too many requests, retry after the given delay"
            retry_after = _format_seconds(self.config.retry_after_seconds)
            return _Reply(
                429,
                _error_body(429, message, code="rate_limit_exceeded"),
                headers=(("Retry-After", retry_after),),
            )
        else:
            status = int(fault)
            message = f"simulated {status} {_reason(status).lower()} error"
            return _Reply(status, _error_body(status, message))

        prompt_chars = sum(len(_content_text(m.get("content"))) for m in messages)
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, len(content) // 4)
        completion = {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"simulated:{model}",
            "system_fingerprint": "grader-simulator",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return _Reply(200, completion)


def _check_response_format(response_format: object) -> str | None:
    """Why response_format is unusable, or None if it is fine (or absent)."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        return "'response_format' must be an object"
    kind = response_format.get("type")
    if kind in ("text", "json_object"):
        return None
    if kind != "json_schema":
        return "'response_format.type' must be 'text', 'json_object' or 'json_schema'"
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return "'response_format.json_schema.schema' must be an object"
    return None


def serve_forever(host: str, port: int, config: SimulatorConfig) -> None:
    """Serve on host:port until SIGINT or SIGTERM, then stop cleanly (no traceback)."""

    async def main() -> None:
        simulator = LLMSimulator(config)
        await simulator.start(host, port)
        print(
            f"Model simulator listening on {simulator.base_url} "
            "(answers are SIMULATED, not grades)",
            flush=True,
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Off the main thread (or on Windows) signal handlers cannot be installed; Ctrl-C
            # then arrives as KeyboardInterrupt, which the caller below swallows.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stopping.set)
                installed.append(sig)
        try:
            await stopping.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await simulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
