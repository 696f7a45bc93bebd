"""The commands that run something and stay: `grader up` and `down` (the local stack),
`serve` (the HTTP API), `demo` (the sample essays end to end) and `simulate-llm` (the model
simulator on loopback)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import non_negative_float, positive_int, probability
from essay_grader.cli.output import emit
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.settings import Settings


def _say(text: str) -> None:
    print(text, flush=True)


def _quiet(text: str) -> None:
    pass


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader.demo import run_demo

    graded, data = run_demo(settings, _quiet if args.json else _say)
    if args.json:
        emit(args, data, "")
    return 0 if graded else 1


def add_demo(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[output], help="grade the sample essays end to end")
    p.set_defaults(func=cmd_demo)


def cmd_simulate_llm(args: argparse.Namespace, settings: Settings) -> int:
    from model_simulator import BatchConfig, SimulatorConfig, parse_fault_rates, serve_forever

    try:
        rates = parse_fault_rates(args.faults) if args.faults else {}
    except ValueError as exc:
        raise GraderError(f"--faults: {exc}") from None
    serve_forever(
        args.host,
        args.port,
        SimulatorConfig(
            latency_ms=args.latency_ms,
            fault_rates=rates,
            retry_after_seconds=args.retry_after,
            seed=args.seed,
            gullible=args.gullible,
            gullible_echo=args.gullible_echo,
        ),
        BatchConfig(seconds=args.batch_seconds, state_file=args.batch_state),
    )
    return 0


def add_simulate_llm(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("simulate-llm", help="serve a simulated OpenAI-compatible model on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--latency-ms", type=non_negative_float, default=0.0)
    p.add_argument(
        "--faults",
        help="fault rates, e.g. 429=0.1,500=0.05,drop=0.01,hang=0.01,truncate=0.01,malformed=0.01 "
        "(also overscore: every number in the answer out of bounds)",
    )
    p.add_argument(
        "--retry-after",
        type=non_negative_float,
        default=1.0,
        help="Retry-After seconds on simulated 429s (1)",
    )
    p.add_argument("--seed", type=int, help="seed for the fault dice")
    p.add_argument(
        "--gullible",
        type=probability,
        default=0.0,
        help="probability of obeying an essay that asks for a score, giving every criterion its "
        "maximum; with it, scores come from reading the essay (0: off)",
    )
    p.add_argument(
        "--gullible-echo",
        type=probability,
        default=0.0,
        help="probability an obeying answer quotes the request in its justifications (0)",
    )
    p.add_argument(
        "--batch-seconds",
        type=non_negative_float,
        default=0.0,
        help="Batch API: seconds from a batch's creation to its completion (0)",
    )
    p.add_argument(
        "--batch-state",
        metavar="FILE",
        help="Batch API: keep files and batches in FILE, across restarts (default: in memory)",
    )
    p.set_defaults(func=cmd_simulate_llm)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader import stack
    from grader.settings import redact_url

    if settings.database_url:
        raise GraderError("DATABASE_URL is set: `grader up` runs the embedded PostgreSQL")
    started = time.monotonic()
    say = (lambda text: None) if args.json else print
    say("Starting the local stack (PostgreSQL, Prefect server and UI, work pool, worker)...")
    state = stack.up(
        settings,
        stack.StackOptions(host=args.host, port=args.port, pool=args.pool),
        say,
    )
    if args.json:
        emit(args, {**state, "database_url": redact_url(state["database_url"])}, "")
        return 0
    print(f"Ready in {time.monotonic() - started:.1f}s.")
    print(f"  Prefect UI     {state['ui_url']}")
    print(f"  Prefect API    {state['api_url']}")
    print(f"  database       embedded PostgreSQL in {settings.pgdata}")
    print(f"  work pool      {state['pool']} (deployments from prefect.yaml)")
    if state["simulated"]:
        print("  model          the built-in simulator (no OPENAI_API_KEY): scores are SIMULATED")
    print(f"  logs           {settings.home / 'logs'}")
    print("grader commands in this GRADER_HOME now use this stack. Stop it with: grader down")
    return 0


def add_up(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "up", parents=[output], help="start the local stack: PostgreSQL, Prefect UI, worker"
    )
    p.add_argument("--host", default="127.0.0.1", help="Prefect server address (127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=4200, help="Prefect UI port (4200)")
    p.add_argument("--pool", default="grading", help="work pool name (grading)")
    p.set_defaults(func=cmd_up)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader import stack

    stopped = stack.down(settings)
    emit(
        args,
        {"stopped": stopped},
        f"stopped: {', '.join(stopped)}" if stopped else "nothing was running",
    )
    return 0


def add_down(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("down", parents=[output], help="stop everything `grader up` started")
    p.set_defaults(func=cmd_down)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from essay_grader.api import create_app
    from grader.store.api_keys import list_keys
    from grader.store.connections import connect

    with connect(settings) as conn:
        live = [k for k in list_keys(conn) if k["revoked_at"] is None]
    print(f"Serving the grading API on http://{args.host}:{args.port}/v1 (OpenAPI: /docs)")
    if not live:
        print("No API key yet: every request will get 401. Create one: grader api-key create NAME")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_serve(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API for web apps")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (8000)")
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.set_defaults(func=cmd_serve)
