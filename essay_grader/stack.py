"""`grader up` / `grader down`: the whole system on one machine, in the background.

Up: the embedded PostgreSQL (the grader database and a separate `prefect` database), a Prefect
server backed by that PostgreSQL (SQLite locks under concurrent load) with its UI, a process
work pool, every deployment in prefect.yaml, a worker, and, without an API key, the model
simulator. Each process runs in its own session with its log in $GRADER_HOME/logs; their pids
are in $GRADER_HOME/stack.json, which `grader down` reads to stop exactly what `up` started.
Data stays in $GRADER_HOME, so the next `up` finds it where it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

import flows
from essay_grader.prefect_setup import OFFLINE
from grader.errors import GraderError
from grader.settings import Settings
from grader.store.connections import database_url
from grader.store.embedded import ensure_database, stop_embedded

# Where the `flows` package lives (the source tree, or site-packages of an installed grader):
# prefect.yaml's entrypoints (flows/grading.py:...) are paths relative to it.
DEPLOY_DIR = Path(flows.__file__).resolve().parent.parent
PREFECT_DATABASE = "prefect"


def prefect_file() -> Path:
    """prefect.yaml: in the source tree, or where the installed distribution put it
    (share/essay-grader/ under the environment's prefix)."""
    source = DEPLOY_DIR / "prefect.yaml"
    if source.exists():
        return source
    # imported here, not by `grader status` (which reads running_stack): they are slow to import
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.distribution("essay-grader").files or []:
            if file.name == "prefect.yaml":
                return Path(str(file.locate())).resolve()
    raise GraderError("prefect.yaml not found: reinstall the grader")


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 4200
    pool: str = "grading"
    simulator_port: int = 0  # 0: a free one (two stacks on one machine must not collide)


def _state_file(settings: Settings) -> Path:
    return settings.home / "stack.json"


def alive(pgid: int) -> bool:
    """Whether any process of the group `up` started (its leader's pid) still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def running_stack(settings: Settings) -> dict | None:
    """The state of a stack started by `grader up` whose processes are still alive."""
    path = _state_file(settings)
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    return state if all(alive(pid) for pid in state["pids"].values()) else None


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(api_url: str) -> bool:
    """Whether the Prefect API at `api_url` answers its health check."""
    from urllib.request import urlopen

    try:
        with urlopen(f"{api_url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            args,
            env=env,
            cwd=DEPLOY_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )


def prefect_database_url(grader_url: str, name: str = PREFECT_DATABASE) -> str:
    """The Prefect server's SQLAlchemy URL for database `name` (created if missing) on the
    server of `grader_url`."""
    info = psycopg.conninfo.conninfo_to_dict(grader_url)
    ensure_database(grader_url, name)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host", "localhost")
    if host.startswith("/"):  # the embedded server listens on a Unix socket only
        return f"postgresql+asyncpg://{user}{password}@/{name}?host={host}"
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql+asyncpg://{user}{password}@{host}{port}/{name}"


def _wait(condition, seconds: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise GraderError(f"{what} did not come up within {seconds:g}s; see {logs}")
        time.sleep(0.3)


def _run(args: list[str], env: dict[str, str], what: str, logs: Path, check: bool = True) -> None:
    done = subprocess.run(
        args, env=env, cwd=DEPLOY_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    with open(logs / "setup.log", "a") as log:
        log.write(done.stdout + done.stderr)
    if check and done.returncode != 0:
        raise GraderError(f"{what} failed; see {logs / 'setup.log'}")


def _rate_limit_model_calls(prefect: str, rpm: int, env: dict[str, str], logs: Path) -> None:
    """GRADER_MODEL_RPM as a Prefect global concurrency limit whose slots decay at rpm/60 per
    second: every worker's call-openai task takes a slot first."""
    from tasks.grading import MODEL_RATE_LIMIT

    values = ["--limit", str(rpm), "--slot-decay-per-second", f"{rpm / 60:.4f}"]
    # create it the first time; set the values every time (the limit may exist from before)
    _run([prefect, "gcl", "create", MODEL_RATE_LIMIT, *values], env, "", logs, check=False)
    _run([prefect, "gcl", "update", MODEL_RATE_LIMIT, *values], env, "the model rate limit", logs)


def up(settings: Settings, options: StackOptions, say) -> dict:
    """Starts the stack (or reports the one already running); returns its state."""
    state = running_stack(settings)
    if state is not None:
        say("The stack is already running.")
        return state
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    prefect = str(bin_dir / "prefect")
    api_url = f"http://{options.host}:{options.port}/api"
    grader_url = database_url(settings)
    base_env = {
        **os.environ,
        **OFFLINE,
        "PREFECT_HOME": str(settings.home / "prefect"),
        "PREFECT_API_URL": api_url,
        "GRADER_HOME": str(settings.home),
    }
    pids: dict[str, int] = {}
    try:
        t0 = time.monotonic()
        server = _spawn(
            "prefect-server",
            [prefect, "server", "start", "--host", options.host, "--port", str(options.port)],
            {
                **base_env,
                "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(grader_url),
                "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            },
            logs,
        )
        pids["prefect-server"] = server.pid
        _wait(lambda: healthy(api_url), 90, "the Prefect server", logs)
        say(f"  Prefect server on PostgreSQL   {time.monotonic() - t0:5.1f}s")

        t0 = time.monotonic()
        _run(
            [prefect, "work-pool", "create", options.pool, "--type", "process", "--overwrite"],
            base_env,
            "creating the work pool",
            logs,
        )
        _run(
            [
                *(prefect, "--no-prompt", "deploy", "--all", "--pool", options.pool),
                *("--prefect-file", str(prefect_file())),
            ],
            base_env,
            "prefect deploy --all",
            logs,
        )
        if settings.model_rpm:
            _rate_limit_model_calls(prefect, settings.model_rpm, base_env, logs)
        # the first listener now, not at the schedule's next tick (up to 10 minutes away)
        _run(
            [prefect, "deployment", "run", "grade-on-arrival/grade-on-arrival"],
            base_env,
            "starting grade-on-arrival",
            logs,
        )
        say(f"  work pool and deployments      {time.monotonic() - t0:5.1f}s")

        worker_env = {
            **base_env,
            "DATABASE_URL": grader_url,
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            # its log file says which run it starts and how each ended (no essay text: the
            # flows log ids, scores and error kinds only)
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO",
        }
        simulated = settings.simulated
        if simulated:
            simulator_port = options.simulator_port or free_port()
            sim = _spawn(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "essay_grader.cli",
                    "simulate-llm",
                    "--port",
                    str(simulator_port),
                    "--latency-ms",
                    "800",
                ],
                base_env,
                logs,
            )
            pids["simulator"] = sim.pid
            worker_env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{simulator_port}/v1"
        t0 = time.monotonic()
        worker = _spawn(
            "worker", [prefect, "worker", "start", "--pool", options.pool], worker_env, logs
        )
        pids["worker"] = worker.pid
        say(f"  worker                         {time.monotonic() - t0:5.1f}s")
    except BaseException:
        _stop_pids(pids)
        raise
    state = {
        "pids": pids,
        "api_url": api_url,
        "ui_url": f"http://{options.host}:{options.port}",
        "pool": options.pool,
        "database_url": grader_url,
        "simulated": simulated,
        "model_url": worker_env.get("OPENAI_BASE_URL"),
    }
    _state_file(settings).write_text(json.dumps(state, indent=2))
    return state


def _stop_pids(pids: dict[str, int], grace: float = 15.0) -> list[str]:
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid) for pid in pids.values()):
        time.sleep(0.2)
    killed = []
    for name, pid in pids.items():
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
            killed.append(name)
    return killed


def down(settings: Settings) -> list[str]:
    """Stops what `up` started (and the embedded PostgreSQL); returns what it stopped."""
    path = _state_file(settings)
    stopped = []
    if path.exists():
        pids = json.loads(path.read_text())["pids"]
        _stop_pids(pids)
        stopped.extend(pids)
        path.unlink()
    if not settings.database_url and stop_embedded(settings):
        stopped.append("postgresql")
    return stopped
