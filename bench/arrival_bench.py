"""Benchmark: how soon grading starts after the trigger, with the local stack running.

    .venv/bin/python bench/arrival_bench.py [--essays 200] [--every 2.0]

Starts `grader up` in a private GRADER_HOME (embedded PostgreSQL, a Prefect server on it, the
process worker, the simulator answering after 800 ms), then triggers essays one at a time at a
steady rate, twice in the same run:

- listener: the grade-on-arrival run listens (LISTEN/NOTIFY) and claims each job at once;
- hand-off: no listener; each trigger starts the grade-submission deployment
  (run_deployment), which the process worker polls for and runs in a new process (the path
  before the listener existed).

For each job: trigger to grade (completed_at - created_at, both the database's clock) minus the
model's latency (the simulator's 800 ms), p50 and p99. Writes bench/results/arrival.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from essay_grader.service import GradingService
from grader.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL_SECONDS = 0.8  # the stack's simulator latency (essay_grader/stack.py)
LISTENER = "grade-on-arrival/grade-on-arrival"
ESSAY = "Homework builds habits, but it takes time from rest and family. Essay {i}."


def _grader(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "grader"), *args], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"grader {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


async def _prefect(api_url: str, fn):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api=api_url) as client:
        return await fn(client)


def _listeners(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM grader.listeners").fetchone()["n"]


def _stop_listener(api_url: str, conn: psycopg.Connection) -> None:
    """Pauses the listener's schedule, cancels its runs, forgets its heartbeat."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.states import Cancelling

    async def stop(client) -> None:
        deployment = await client.read_deployment_by_name(LISTENER)
        await client.pause_deployment(deployment.id)
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["grade-on-arrival"]))
        )
        for run in runs:
            if not run.state.is_final():
                await client.set_flow_run_state(run.id, Cancelling(), force=True)

    asyncio.run(_prefect(api_url, stop))
    time.sleep(10)  # the worker stops the run's process
    conn.execute("DELETE FROM grader.listeners")


def _trigger(client: GradingService, essays: int, every: float, start: int) -> list:
    """Submits and triggers `essays` essays, one every `every` seconds."""
    task_ids = []
    next_at = time.monotonic()
    for i in range(start, start + essays):
        submission = client.submit_essay(ESSAY.format(i=i))
        task_ids.append(client.start_grading_job(submission))
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))
    return task_ids


def _measure(conn: psycopg.Connection, task_ids: list, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute(
            "SELECT status, extract(epoch FROM completed_at - created_at) AS seconds "
            "FROM grader.background_tasks WHERE task_id = ANY(%s)",
            (task_ids,),
        ).fetchall()
        if all(r["status"] in ("completed", "failed") for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(1)
    over_model = sorted(float(r["seconds"]) - MODEL_SECONDS for r in rows if r["seconds"])
    q = statistics.quantiles(over_model, n=100, method="inclusive") if len(over_model) > 1 else []
    return {
        "essays": len(task_ids),
        "completed": sum(r["status"] == "completed" for r in rows),
        "p50_s": round(statistics.median(over_model), 3) if over_model else None,
        "p99_s": round(q[98], 3) if q else None,
        "max_s": round(over_model[-1], 3) if over_model else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essays", type=int, default=200)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between triggers")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="grader-arrival-bench-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GRADER_"))},
        "GRADER_HOME": str(home),
    }
    env.pop("DATABASE_URL", None)
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    started = time.monotonic()
    state = json.loads(_grader(env, "up", "--port", "4391", "--json"))
    result: dict = {"essays": args.essays, "every_s": args.every, "model_s": MODEL_SECONDS}
    try:
        settings = replace(
            Settings.from_env(env),
            prefect_api_url=state["api_url"],
            database_url=state["database_url"],
        )
        client = GradingService(settings)
        with psycopg.connect(state["database_url"], autocommit=True, row_factory=dict_row) as conn:
            deadline = time.monotonic() + 180
            while not _listeners(conn):  # the listener `grader up` started
                if time.monotonic() > deadline:
                    raise SystemExit("no listener 180 s after grader up")
                time.sleep(0.5)
            print("listener...", flush=True)
            ids = _trigger(client, args.essays, args.every, 0)
            result["listener"] = _measure(conn, ids, 600)
            print(f"  {result['listener']}", flush=True)

            _stop_listener(state["api_url"], conn)
            print("hand-off...", flush=True)
            ids = _trigger(client, args.essays, args.every, args.essays)
            from grader import handoff

            handoff.drain()
            result["handoff"] = _measure(conn, ids, 1200)
            print(f"  {result['handoff']}", flush=True)
    finally:
        _grader(env, "down")
    result["seconds"] = round(time.monotonic() - started, 1)
    listener, handed = result["listener"], result["handoff"]
    if listener["p50_s"] and handed["p50_s"]:
        result["ratio_p50"] = round(listener["p50_s"] / handed["p50_s"], 3)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "arrival.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
