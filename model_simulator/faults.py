"""The simulator's faults, as a real provider fails: which there are (FAULTS, and any HTTP status
400-599), how a spec of rates is read (`parse_fault_rates`), which fault the next request gets
(`FaultPicker`: a script first, else drawn at the configured rates), and what each does to an
answer: an OpenAI-style error (`error_response`; a 429 says when to retry), no complete answer
at all (`DroppedAnswer`: drop, or hang first), half an answer (truncate), prose instead of JSON
(malformed), scores out of every bound (overscore).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import math
import random
from typing import Any

from starlette.responses import JSONResponse, Response

FAULTS: tuple[str, ...] = ("429", "500", "drop", "hang", "truncate", "malformed", "overscore")
OVERSCORE = 1_000_000  # the score every criterion gets under `overscore`

STATUSES = {str(status) for status in range(400, 600)}  # any of these is a fault too
FAULT_NAMES = f"{', '.join(FAULTS)} or an HTTP status 400-599"
_PHRASES = {status.value: status.phrase.lower() for status in http.HTTPStatus}


def is_fault(name: object) -> bool:
    return isinstance(name, str) and (name in FAULTS or name in STATUSES)


def in_range(value: Any, top: float = math.inf) -> bool:
    """A finite number from 0 to `top` (a bool is not a number here)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and 0 <= value <= top and value < math.inf  # NaN fails too


def parse_fault_rates(spec: str) -> dict[str, float]:
    """Parse "429=0.1,500=0.05,drop=0.01" into {"429": 0.1, "500": 0.05, "drop": 0.01}.

    Raises ValueError with a one-line message on an unknown fault, a rate outside 0..1, a repeated
    fault or rates adding up to more than 1. An empty spec means no faults.
    """
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not name or not raw:
            raise ValueError(f"fault rate {item!r} must look like NAME=RATE, e.g. 429=0.1")
        if not is_fault(name):
            raise ValueError(f"unknown fault {name!r}: expected {FAULT_NAMES}")
        if name in rates:
            raise ValueError(f"fault {name!r} is given more than once")
        with contextlib.suppress(ValueError):
            rates[name] = float(raw)
        if not in_range(rates.get(name), 1):
            raise ValueError(f"rate of fault {name!r} must be a number from 0 to 1, got {raw!r}")
    if sum(rates.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(rates.values()):g}, more than 1")
    return rates


class FaultPicker:
    """The fault of each request in turn, from a generator seeded by the config's seed."""

    def __init__(self, seed: int | None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restarts the sequence of drawn faults (even if the seed is unchanged)."""
        self._rng, self._seed = random.Random(seed), seed

    def pick(self, script: list[str], seed: int | None, rates: dict[str, float]) -> str | None:
        """The next fault: from the script first (taken off it), else drawn at `rates`."""
        if script:
            fault = script.pop(0)
            return None if fault == "ok" else fault
        if seed != self._seed:
            self.reseed(seed)
        roll = self._rng.random() if rates else 1.0
        for name, rate in rates.items():
            if roll < rate:
                return name
            roll -= rate
        return None


def error_response(status: int, message: str, param: str | None = None, **kw: Any) -> JSONResponse:
    """An OpenAI-style error response."""
    kinds = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
    kind = kinds.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": param, "code": kw.pop("code", None)}
    return JSONResponse({"error": error}, status, **kw)


def failed_request(
    fault: str | None,
    hang_seconds: float,
    retry_after_seconds: float,
    stopping: asyncio.Event | None,
) -> Response | None:
    """What a request gets instead of an answer under `fault` (drop, hang, 429 or an HTTP
    status); None when the fault, if any, spoils the answer itself."""
    if fault in ("drop", "hang"):
        return DroppedAnswer(hang_seconds if fault == "hang" else 0, stopping)
    if fault == "429":
        seconds = retry_after_seconds
        wait = f"{seconds:.0f}" if float(seconds).is_integer() else str(seconds)
        message = "simulated rate limit: too many requests, retry after the given delay"
        return error_response(
            429, message, code="rate_limit_exceeded", headers={"Retry-After": wait}
        )
    if fault in STATUSES:
        message = f"simulated {fault} {_PHRASES.get(int(fault), 'http')} error"
        return error_response(int(fault), message)
    return None


def spoiled(fault: str | None, content: str) -> tuple[str, str]:
    """The answer's content and finish reason under `fault`: half of it (truncate, cut off as
    by a token limit), prose instead of JSON (malformed), or as it was."""
    if fault == "truncate":
        return content[: len(content) // 2], "length"
    if fault == "malformed":
        return "[simulated] I think this essay deserves a good grade.", "stop"
    return content, "stop"


class _Dropped(Exception):
    """Raised after a response head, so that uvicorn closes the connection mid-response."""


# uvicorn logs every exception from the app; a deliberate drop is not worth a traceback.
logging.getLogger("uvicorn.error").addFilter(
    lambda record: not (record.exc_info and isinstance(record.exc_info[1], _Dropped))
)


class DroppedAnswer(Response):
    """No complete answer: for a hang, wait first until the client leaves, `hang_seconds` pass
    or the server stops; then send a head promising a body that never comes, and close."""

    def __init__(self, hang_seconds: float = 0, stopping: asyncio.Event | None = None) -> None:
        self.hang_seconds, self.stopping = hang_seconds, stopping

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.hang_seconds and self.stopping:

            async def client_left() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass

            waits = {
                asyncio.ensure_future(client_left()),
                asyncio.ensure_future(self.stopping.wait()),
            }
            await asyncio.wait(waits, timeout=self.hang_seconds, return_when="FIRST_COMPLETED")
            for task in waits:
                task.cancel()
        head = [(b"content-type", b"application/json"), (b"content-length", b"100")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        raise _Dropped
