"""`grader demo`: grade the sample essays end to end on this machine.

Embedded PostgreSQL (unless DATABASE_URL is set), migrations, the sample essays and the default
rubric, one grading flow run per essay, then a table of scores and durations and the monitoring
statistics. Without OPENAI_API_KEY (or OPENAI_BASE_URL) it grades with the built-in model
simulator over loopback HTTP, and says so: simulated scores are not grades.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from importlib import resources
from uuid import UUID

from grader import client, db
from grader.migrate import migrate
from grader.models import JobStatus, json_default
from grader.prefect_setup import start_prefect
from grader.settings import Settings

SIMULATOR_LATENCY_MS = 600.0


def sample_essays() -> list[tuple[str, str]]:
    """(name, text) of the essays that ship for the demo, in order."""
    folder = resources.files("grader").joinpath("samples")
    return [
        (entry.name.removesuffix(".txt"), entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".txt")
    ]


async def _grade_all(tasks: dict[str, UUID], report: Callable[[str], None]) -> None:
    from flows.grading import grade_submission

    # One flow run after another: Prefect's temporary server keeps its state in SQLite, which
    # answers concurrent run creation with lock retries of seconds. `grader run-pending` is the
    # concurrent path.
    for name, task_id in tasks.items():
        await grade_submission(task_id, return_state=True)
        report(name)


def _seconds(start: datetime | None, end: datetime | None) -> str:
    return f"{(end - start).total_seconds():.2f}" if start and end else "-"


def _table(results: dict[str, JobStatus]) -> str:
    first = next((s.grade for s in results.values() if s.grade), None)
    keys = [c["key"] for c in first.criteria] if first else []
    header = f"{'essay':<28} {'status':<10} {'score':>7} " + " ".join(f"{k[:12]:>12}" for k in keys)
    header += f" {'wait s':>7} {'grading s':>9} {'calls':>5}"
    lines = [header, "-" * len(header)]
    for name, status in results.items():
        grade = status.grade
        score = f"{grade.total_score}/{grade.max_score}" if grade else "-"
        per = {c["key"]: f"{c['score']}/{c['max_points']}" for c in grade.criteria} if grade else {}
        wait = _seconds(status.created_at, status.started_at)
        grading = _seconds(status.started_at, status.completed_at)
        calls = str(grade.model_attempts) if grade else "-"
        lines.append(
            f"{name[:28]:<28} {status.status:<10} {score:>7} "
            + " ".join(f"{per.get(k, '-'):>12}" for k in keys)
            + f" {wait:>7} {grading:>9} {calls:>5}"
        )
    return "\n".join(lines)


def run_demo(settings: Settings, as_json: bool = False) -> int:
    def say(text: str = "") -> None:
        if not as_json:
            print(text, flush=True)

    started = time.monotonic()
    say("Essay grader demo")
    db.database_url(settings)  # starts the embedded server (and migrates it) when that is the one
    with db.connect(settings) as conn:
        migrate(conn)

    with ExitStack() as stack:
        simulated = not settings.openai_api_key and not settings.openai_base_url
        if simulated:
            from grader.simulator import LLMSimulator, SimulatorConfig

            simulator = stack.enter_context(
                LLMSimulator(SimulatorConfig(latency_ms=SIMULATOR_LATENCY_MS)).serve_in_thread()
            )
            os.environ["OPENAI_BASE_URL"] = simulator.base_url
            stack.callback(os.environ.pop, "OPENAI_BASE_URL", None)
            say(
                f"\nNo OPENAI_API_KEY: grading with the built-in model simulator at "
                f"{simulator.base_url}.\nIts scores are SIMULATED, not grades. Set OPENAI_API_KEY "
                "to grade with a real model."
            )
        for name, value in Settings.from_env().describe().items():
            say(f"  {name:<15} {value}")

        say("\nStarting Prefect...")
        start_prefect()

        tasks: dict[str, UUID] = {}
        for name, text in sample_essays():
            submission_id = client.submit_essay(text, student_ref=f"demo:{name}")
            tasks[name] = client.start_grading_job(submission_id)
        say(f"\nTriggered {len(tasks)} grading jobs; grading them with Prefect flows...")

        def report(name: str) -> None:
            status = client.check_grading_status(tasks[name])
            score = f"{status.grade.total_score}/{status.grade.max_score}" if status.grade else ""
            say(f"  {status.status:<10} {name} {score}")

        asyncio.run(_grade_all(tasks, report))

    results = {name: client.check_grading_status(task_id) for name, task_id in tasks.items()}
    from reports import monitoring

    with db.connect(settings) as conn:
        stats = monitoring.grading_time_stats(conn)
    if as_json:
        print(
            json.dumps(
                {
                    "simulated": simulated,
                    "results": {name: s.to_dict() for name, s in results.items()},
                    "stats": stats,
                },
                indent=2,
                default=json_default,
            )
        )
    else:
        say()
        say(
            _table(results)
            + ("\n(scores SIMULATED by the built-in model simulator)" if simulated else "")
        )
        say("\nMonitoring (grader jobs stats):\n" + monitoring.format_stats(stats))
        first = next(iter(tasks.values()))
        say(f"\nDone in {time.monotonic() - started:.1f}s. Try: grader status {first}")
    return 0 if all(s.status == "completed" for s in results.values()) else 1
