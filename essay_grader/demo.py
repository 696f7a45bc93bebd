"""`grader demo`: grade the sample essays end to end on this machine.

Embedded PostgreSQL (unless DATABASE_URL is set), migrations, the sample essays and the default
rubric, one grading flow run per essay, then a table of scores and durations and the monitoring
statistics. Without OPENAI_API_KEY (or OPENAI_BASE_URL) it grades with the built-in model
simulator over loopback HTTP, and says so: simulated scores are not grades.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID

from essay_grader.prefect_setup import start_prefect
from essay_grader.runner import run_here
from essay_grader.service import GradingService
from grader.jobs import JobStatus
from grader.settings import Settings
from grader.store.connections import connect, migrate_database
from grader.store.monitoring import grading_time_stats
from model_simulator import LLMSimulator, SimulatorConfig
from reports.monitoring import format_stats

SIMULATOR_LATENCY_MS = 600.0


def sample_essays() -> list[tuple[str, str]]:
    """(name, text) of the essays that ship for the demo, in order."""
    folder = resources.files("essay_grader").joinpath("samples")
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
    keys = [c.key for c in first.criteria] if first else []
    header = f"{'essay':<28} {'status':<10} {'score':>7} " + " ".join(f"{k[:12]:>12}" for k in keys)
    header += f" {'wait s':>7} {'grading s':>9} {'calls':>5}"
    lines = [header, "-" * len(header)]
    for name, status in results.items():
        grade = status.grade
        score = f"{grade.total_score}/{grade.max_score}" if grade else "-"
        per = {c.key: f"{c.score}/{c.max_points}" for c in grade.criteria} if grade else {}
        wait = _seconds(status.created_at, status.started_at)
        grading = _seconds(status.started_at, status.completed_at)
        calls = str(grade.model_attempts) if grade else "-"
        lines.append(
            f"{name[:28]:<28} {status.status:<10} {score:>7} "
            + " ".join(f"{per.get(k, '-'):>12}" for k in keys)
            + f" {wait:>7} {grading:>9} {calls:>5}"
        )
    return "\n".join(lines)


def _grader_command() -> str:
    """How this shell reaches the `grader` this demo runs from: `grader` when it is on PATH,
    else its path (`.venv/bin/grader` after `make demo`)."""
    here = Path(sys.executable).parent / "grader"
    on_path = shutil.which("grader")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "grader"
    with contextlib.suppress(ValueError):
        return str(here.relative_to(Path.cwd()))
    return str(here)


def run_demo(settings: Settings, say: Callable[[str], None]) -> tuple[bool, dict[str, Any]]:
    """Grades the samples, telling `say` what happens; returns whether every essay was graded,
    and the results."""
    started = time.monotonic()
    say("Essay grader demo")
    migrate_database(settings)  # the embedded server migrates itself; a DATABASE_URL does not

    with ExitStack() as stack:
        simulated = settings.simulated
        if simulated:
            simulator = stack.enter_context(
                LLMSimulator(SimulatorConfig(latency_ms=SIMULATOR_LATENCY_MS)).serve_in_thread()
            )
            settings = replace(settings, openai_base_url=simulator.base_url)
            say(
                f"\nNo OPENAI_API_KEY: grading with the built-in model simulator at "
                f"{simulator.base_url}.\nIts scores are SIMULATED, not grades. Set OPENAI_API_KEY "
                "to grade with a real model."
            )
        for name, value in settings.describe().items():
            say(f"  {name:<15} {value}")

        say("\nStarting Prefect...")
        start_prefect()

        # no hand-off: the demo grades here, whatever Prefect API the environment names
        client = GradingService(replace(settings, deployment=""))
        tasks: dict[str, UUID] = {}
        for name, text in sample_essays():
            submission_id = client.submit_essay(text, student_ref=f"demo:{name}")
            tasks[name] = client.start_grading_job(submission_id)
        say(f"\nTriggered {len(tasks)} grading jobs; grading them with Prefect flows...")

        def report(name: str) -> None:
            status = client.check_grading_status(tasks[name])
            score = f"{status.grade.total_score}/{status.grade.max_score}" if status.grade else ""
            say(f"  {status.status:<10} {name} {score}")

        run_here(settings, lambda: _grade_all(tasks, report))

    results = {name: client.check_grading_status(task_id) for name, task_id in tasks.items()}
    with connect(settings) as conn:
        stats = grading_time_stats(conn, 7)
    say("")
    say(
        _table(results)
        + ("\n(scores SIMULATED by the built-in model simulator)" if simulated else "")
    )
    say("\nMonitoring (grader jobs stats):\n" + format_stats(stats))
    first = next(iter(tasks.values()))
    say(f"\nDone in {time.monotonic() - started:.1f}s.")
    say(f"Try: {_grader_command()} status {first}")
    data = {
        "simulated": simulated,
        "results": {name: s.to_dict() for name, s in results.items()},
        "stats": stats,
    }
    return all(s.status == "completed" for s in results.values()), data
