"""The simulator as a server: an OpenAI-compatible HTTP API on loopback (a Starlette app on
uvicorn) for the demo, the tests and the benchmarks, which point the official `openai` client at
`LLMSimulator.base_url`. Its routes: chat completions (model_simulator/chat.py), Files and
Batch API (model_simulator/batch.py), /v1/models, and the simulator's own config and request
log (`/_simulator/config`, `/_simulator/requests`; never the request bodies: they hold essays).
Served from a thread (`serve_in_thread`) or as a process (`serve_forever`, `grader
simulate-llm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from model_simulator.batch import BatchAPI, BatchConfig
from model_simulator.chat import ChatCompletions, RequestRecord
from model_simulator.config import SimulatorConfig, check_field
from model_simulator.faults import DroppedAnswer, error_response


class _Server(uvicorn.Server):
    stopping: asyncio.Event

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopping.set()  # ends hanging and delayed answers, as dropped connections
        await super().shutdown(sockets)


class LLMSimulator:
    """The simulator; serve it with `serve_in_thread()`. `config` may be changed and `requests`
    read at any time."""

    def __init__(
        self, config: SimulatorConfig | None = None, batch_config: BatchConfig | None = None
    ) -> None:
        config = config if config is not None else SimulatorConfig()
        config.__post_init__()  # checks it again: it may have been changed since
        self.chat = ChatCompletions(config)
        self.requests: list[RequestRecord] = []
        self._stopping = asyncio.Event()
        self._base_url: str | None = None
        routes = [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._admin, methods=["GET"]),
            Route("/_simulator/config", self._admin, methods=["GET", "POST"]),
            Route("/_simulator/requests", self._admin, methods=["GET", "DELETE"]),
        ]
        # /v1/files and /v1/batches, answered line by line as chat requests
        self.batches = BatchAPI(self.chat, self.requests, batch_config)
        routes += self.batches.routes()
        self.app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})

    @property
    def config(self) -> SimulatorConfig:
        return self.chat.config

    @config.setter
    def config(self, config: SimulatorConfig) -> None:
        self.chat.config = config

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("simulator has not been started")
        return self._base_url

    def _server(self, host: str, port: int) -> tuple[_Server, socket.socket]:
        """A uvicorn server for this app, and its socket, bound and listening."""
        # IPPROTO_TCP, not 0: only then does asyncio set TCP_NODELAY on accepted connections
        # (without it, each answer waits ~40 ms for a delayed ACK).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            # A deep backlog: benchmarks open hundreds of connections at once, and a full backlog
            # turns into 1 s SYN retransmits that would be measured as model latency.
            sock.listen(4096)
        except OSError:
            sock.close()
            raise
        self._base_url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}/v1"
        self._stopping = asyncio.Event()
        config = uvicorn.Config(
            self.app,
            http="auto",  # httptools if installed, else h11
            log_config=None,  # leave the process's logging alone
            log_level="error",
            access_log=False,
            lifespan="off",
            ws="none",
            backlog=4096,
            timeout_keep_alive=60,  # well past httpx's 5 s: no race on reused connections
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        server.stopping = self._stopping
        return server, sock

    @contextlib.contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[LLMSimulator]:
        """Serve from a daemon thread while the block runs; then stop, ending hanging requests."""
        server, sock = self._server(host, port)
        thread = threading.Thread(target=server.run, args=([sock],), name="llm-simulator")
        thread.daemon = True
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the model simulator failed to start")
                time.sleep(0.005)
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        where = f"{request.method} {request.url.path}"
        messages = {404: f"simulated API has no route {where}", 405: f"{where} is not allowed"}
        message = messages.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, message, headers=exc.headers)

    async def _admin(self, request: Request) -> Response:
        """/v1/models, and the simulator's own config and request log."""
        if request.url.path == "/v1/models":
            model = {"id": "simulated", "object": "model", "owned_by": "grader-simulator"}
            return JSONResponse({"object": "list", "data": [{**model, "created": 0}]})
        if request.url.path == "/_simulator/requests":
            if request.method == "DELETE":
                self.requests.clear()
            # never the bodies over HTTP: they hold essays
            log = [{k: v for k, v in asdict(r).items() if k != "body"} for r in self.requests]
            return JSONResponse(log)
        if request.method == "POST":
            try:
                update = json.loads(await request.body())
                if not isinstance(update, dict):
                    raise ValueError("config update must be a JSON object")
                checked = {name: check_field(name, value) for name, value in update.items()}
            except ValueError as exc:  # all or nothing: a bad field changes no field
                return error_response(400, str(exc).splitlines()[0])
            for name, value in checked.items():
                setattr(self.config, name, value)
            if "seed" in checked:  # restarts the fault sequence even if the seed is unchanged
                self.chat.faults.reseed(self.config.seed)
        config = asdict(self.config)
        config["reference"] = len(self.config.reference)  # how many essays it knows
        return JSONResponse(config)

    async def _chat(self, request: Request) -> Response:
        raw = await request.body()
        record = RequestRecord(time.time(), request.url.path, None, None, None, None)
        if self.config.keep_bodies:
            record.body = raw.decode("utf-8", "replace")
        self.requests.append(record)
        response = self.chat.answer(raw, record, self._stopping)
        record.status = None if isinstance(response, DroppedAnswer) else response.status_code
        if self.config.latency_ms > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.latency_ms / 1000)
        return DroppedAnswer() if self._stopping.is_set() else response


def serve_forever(
    host: str, port: int, config: SimulatorConfig, batch_config: BatchConfig | None = None
) -> None:
    """Serve on host:port until SIGINT or SIGTERM, then stop cleanly (no traceback)."""
    simulator = LLMSimulator(config, batch_config)
    server, sock = simulator._server(host, port)
    listening = f"Model simulator listening on {simulator.base_url}"
    print(f"{listening} (answers are SIMULATED, not grades)", flush=True)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    # Also catches a signal before uvicorn installs its handlers, and the one uvicorn re-raises
    # once it has shut down (which, left to the default handler, would kill the process).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    with contextlib.closing(sock):
        server.run([sock])
