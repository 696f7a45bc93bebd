"""The benchmarks, each figure beside a baseline measured in the same run (these machines are
shared and noisy: ratios mean more than seconds).

    make bench            # or: .venv/bin/python bench/run.py [--quick]

1. trigger latency: start_grading_job vs a bare INSERT ... RETURNING on the same pool, without
   and with the Prefect hand-off configured (a real Prefect server with the deployment);
2. status lookup: check_grading_status vs a bare primary-key SELECT, at 1,000,000 rows;
3. throughput: grade_pending vs the same work without Prefect (asyncio, same pool, same
   client, same SQL), simulator at 0 ms and 1,000 ms, concurrency 50, 100, 200;
4. result latency: commit of a grade to the waiting client seeing it, polling vs LISTEN;
5. the weekly report over 1,000,000 jobs vs one percentile_cont query (bench/report_bench.py);
6. batch mode (`--only batch`): 10,000 jobs through grade-pending-batch (the provider's batch
   time left out) vs the same jobs through grade_pending and through the bare asyncio loop.

Writes bench/results/latest.json and bench/results/latest.md (with `--only S`: S.json, S.md).
Runs on a private embedded PostgreSQL and a model simulator in its own process.
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
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="grader-bench-"))
os.environ.update(
    {
        "GRADER_HOME": str(WORK / "home"),
        "PREFECT_HOME": str(WORK / "prefect"),
        "GRADER_MODEL_RETRIES": "2",
    }
)
for name in ("DATABASE_URL", "PREFECT_API_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(name, None)

from essay_grader.prefect_setup import OFFLINE, configure_prefect  # noqa: E402

configure_prefect()

import psutil  # noqa: E402
import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from bench.run_table import markdown  # noqa: E402
from essay_grader.service import GradingService  # noqa: E402
from grader.grading.rubric import load_rubric  # noqa: E402
from grader.grading.scoring import parse_reply  # noqa: E402
from grader.model.client import model_client, request_grade  # noqa: E402
from grader.settings import Settings  # noqa: E402
from grader.store.connections import close_pools, database_url, get_pool, open_async_pool  # noqa: E402
from grader.store.jobs import (  # noqa: E402
    claim_job,
    claim_pending_jobs,
    complete_job,
    load_submission,
    save_rubric,
)

RUBRIC = load_rubric()
ESSAY = "Should homework be banned? Homework takes time from rest and family, but it builds habits."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(values, 0.5) * 1000, 3),
        "p99_ms": round(pct(values, 0.99) * 1000, 3),
    }


def conn() -> psycopg.Connection:
    return psycopg.connect(
        database_url(Settings.from_env()), autocommit=True, row_factory=psycopg.rows.dict_row
    )


def reset() -> None:
    with conn() as c:
        c.execute("TRUNCATE grader.grades, grader.background_tasks, grader.submissions CASCADE")


def submissions(n: int) -> list[uuid.UUID]:
    """n submissions inserted in one statement (setup, not measured)."""
    settings = Settings.from_env()
    with get_pool(settings).connection() as c:
        rubric_id = save_rubric(c, RUBRIC)
        rows = c.execute(
            "INSERT INTO grader.submissions (essay, content_sha256, rubric_id) "
            "SELECT %s || ' ' || i, md5(i::text), %s FROM generate_series(1, %s) AS i "
            "RETURNING submission_id",
            (ESSAY, rubric_id, n),
        ).fetchall()
    return [r["submission_id"] for r in rows]


def _jobs(mode: str) -> None:
    """A pending job for every submission (setup, not measured)."""
    with conn() as c:
        c.execute(
            "INSERT INTO grader.background_tasks (input_data, idempotency_key, grading_mode) "
            "SELECT jsonb_build_object('submission_id', submission_id::text, "
            "'rubric_id', rubric_id::text), submission_id::text, %s FROM grader.submissions",
            (mode,),
        )


# --- 1. trigger latency ---------------------------------------------------------------------


def _time_triggers(ids: list[uuid.UUID]) -> list[float]:
    client = GradingService(Settings.from_env())  # with PREFECT_API_URL set: hands off
    times = []
    for submission_id in ids:
        started = time.perf_counter()
        client.start_grading_job(submission_id)
        times.append(time.perf_counter() - started)
    return times


def _time_bare_inserts(n: int) -> list[float]:
    pool = get_pool(Settings.from_env())
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with pool.connection() as c:
            c.execute(
                "INSERT INTO grader.background_tasks (input_data) VALUES (%s) RETURNING task_id",
                (Jsonb({"bench": True}),),
            ).fetchone()
        times.append(time.perf_counter() - started)
    return times


def _prefect_server_with_deployment() -> tuple[subprocess.Popen, str]:
    port = 4391
    api = f"http://127.0.0.1:{port}/api"
    from essay_grader.stack import prefect_database_url

    # on PostgreSQL, as `grader up` runs it: SQLite answers bursts with lock retries
    env = {
        **os.environ,
        **OFFLINE,
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(
            database_url(Settings.from_env())
        ),
    }
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bin_dir / "prefect"), "server", "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{api}/health", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    for args in (
        ["work-pool", "create", "grading", "--type", "process", "--overwrite"],
        ["--no-prompt", "deploy", "--all"],
    ):
        subprocess.run(
            [str(bin_dir / "prefect"), *args], env=env, cwd=ROOT, check=True, capture_output=True
        )
    return server, api


def bench_trigger(n: int, handed_off: int, api: str) -> dict:
    reset()
    ids = submissions(2 * n)
    _time_triggers(ids[:50])  # warm the pool and the prepared statements
    _time_bare_inserts(50)
    reset()
    ids = submissions(n + handed_off)
    bare = _time_bare_inserts(n)
    trigger = _time_triggers(ids[:n])
    result = {"baseline_insert": ms(bare), "start_grading_job": ms(trigger)}
    os.environ["PREFECT_API_URL"] = api
    try:
        handed = _time_triggers(ids[n:])
        from grader import handoff

        handoff.drain()
        with conn() as c:
            linked = c.execute(
                "SELECT count(*) AS n FROM grader.background_tasks WHERE flow_run_id IS NOT NULL"
            ).fetchone()["n"]
        result["start_grading_job_with_handoff"] = {**ms(handed), "flow_runs_created": linked}
    finally:
        os.environ.pop("PREFECT_API_URL", None)
    return result


# --- 2. status lookup at 1,000,000 rows -----------------------------------------------------


def bench_status(rows: int, lookups: int) -> dict:
    reset()
    ids = submissions(1)
    with conn() as c:
        c.execute(
            "INSERT INTO grader.background_tasks (status, input_data, attempts, created_at, "
            "started_at, completed_at) "
            "SELECT 'completed', jsonb_build_object('submission_id', %s::text, 'rubric_id', "
            "gen_random_uuid()::text), 1, now() - interval '1 hour', now() - interval '59 minutes',"
            " now() FROM generate_series(1, %s)",
            (str(ids[0]), rows),
        )
        c.execute("ANALYZE grader.background_tasks")
        sample = [
            r["task_id"]
            for r in c.execute(
                "SELECT task_id FROM grader.background_tasks TABLESAMPLE SYSTEM (1) LIMIT %s",
                (lookups,),
            )
        ]
    settings = Settings.from_env()
    pool, client = get_pool(settings), GradingService(settings)
    for task_id in sample[:50]:
        client.check_grading_status(task_id)
    bare, status = [], []
    for task_id in sample:
        started = time.perf_counter()
        with pool.connection() as c:
            c.execute(
                "SELECT * FROM grader.background_tasks WHERE task_id = %s", (task_id,)
            ).fetchone()
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.check_grading_status(task_id)
        status.append(time.perf_counter() - started)
    return {"rows": rows, "baseline_pk_select": ms(bare), "check_grading_status": ms(status)}


# --- 3. throughput ----------------------------------------------------------------------------


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _prefect_helpers(exclude: set[int]) -> list[int]:
    me = psutil.Process()
    return [me.pid] + [p.pid for p in me.children(recursive=True) if p.pid not in exclude]


async def _baseline_batch(limit: int, concurrency: int) -> int:
    """The same work as grade_pending (claim as slots free up, load, model call, parse,
    persist; the same pool, client and SQL) in plain asyncio, without Prefect."""
    settings = Settings.from_env()
    done = 0
    async with (
        open_async_pool(settings, max_size=min(concurrency + 1, 20)) as pool,
        model_client(settings) as llm,
    ):

        async def grade(job) -> None:
            submission = await load_submission(pool, job)
            reply = await request_grade(llm, settings.model, submission.rubric, submission.essay, 1)
            await complete_job(pool, job, parse_reply(reply, submission.rubric))

        in_flight: set[asyncio.Task] = set()
        claimed = 0
        while True:
            free = min(concurrency - len(in_flight), limit - claimed)
            if free > 0:
                for job in await claim_pending_jobs(pool, free, settings):
                    claimed += 1
                    in_flight.add(asyncio.create_task(grade(job)))
            if not in_flight:
                return done
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            done += sum(1 for t in finished if t.exception() is None)


def bench_throughput(
    n: int, latencies: list[int], concurrencies: list[int], sim_port: int, sim_pid: int
) -> list[dict]:
    from flows.grading import grade_pending

    results = []
    for latency in latencies:
        _sim_config(sim_port, {"latency_ms": latency})
        for concurrency in concurrencies:
            row = {"latency_ms": latency, "concurrency": concurrency, "jobs": n}
            for variant in ("baseline", "prefect"):
                reset()
                submissions(n)
                _jobs("now")
                pids = _prefect_helpers({sim_pid})
                cpu0, t0 = _cpu(pids), time.perf_counter()
                if variant == "baseline":
                    graded = asyncio.run(_baseline_batch(n, concurrency))
                else:
                    graded = asyncio.run(grade_pending(limit=n, concurrency=concurrency))[
                        "completed"
                    ]
                seconds = time.perf_counter() - t0
                cpu = _cpu(pids) - cpu0
                row[variant] = {
                    "jobs_per_s": round(graded / seconds, 2),
                    "seconds": round(seconds, 2),
                    "completed": graded,
                    "cpu_ms_per_job": round(cpu / max(graded, 1) * 1000, 2),
                }
            row["ratio"] = round(row["prefect"]["jobs_per_s"] / row["baseline"]["jobs_per_s"], 3)
            print(f"  throughput {row}", flush=True)
            results.append(row)
    return results


def _sim_config(port: int, config: dict) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_simulator/config",
        data=json.dumps(config).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()


# --- 6. batch mode ---------------------------------------------------------------------------


def _task_runs() -> int:
    """Task runs the Prefect server knows of (its REST API's count), once the count has
    settled: task runs reach the server as events, some seconds after they ran."""
    request = urllib.request.Request(
        os.environ["PREFECT_API_URL"] + "/task_runs/count",
        data=b"{}",
        headers={"content-type": "application/json"},
        method="POST",
    )
    counts = [-1]
    while True:
        with urllib.request.urlopen(request, timeout=60) as answer:
            counts.append(int(answer.read()))
        if counts[-1] == counts[-2]:
            return counts[-1]
        time.sleep(3)


def _wait_for_provider(port: int) -> float:
    """Waits (outside the measured time) until the simulator has answered every open batch;
    the seconds it took."""
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}/v1/batches?limit=100"
    while True:
        with urllib.request.urlopen(url, timeout=600) as answer:
            batches = json.loads(answer.read())["data"]
        if all(b["status"] in ("completed", "failed", "expired", "cancelled") for b in batches):
            return time.perf_counter() - started
        time.sleep(0.5)


def bench_batch(n: int, concurrency: int, sim_port: int, sim_pid: int) -> dict:
    """Batch mode vs grade_pending vs the bare loop on n jobs, the simulator at 0 ms."""
    from flows.batch import grade_pending_batch
    from flows.grading import grade_pending
    from grader.grading.pricing import DEFAULT_PRICES, call_cost

    _sim_config(sim_port, {"latency_ms": 0})
    row: dict = {"jobs": n, "concurrency": concurrency, "priced_as": "gpt-4o-mini"}
    for variant in ("baseline", "prefect", "batch"):
        reset()
        submissions(n)
        _jobs("batch" if variant == "batch" else "now")
        pids = _prefect_helpers({sim_pid})
        runs0 = _task_runs()
        cpu0, t0 = _cpu(pids), time.perf_counter()
        provider_seconds = 0.0
        if variant == "baseline":
            graded = asyncio.run(_baseline_batch(n, concurrency))
        elif variant == "prefect":
            graded = asyncio.run(grade_pending(limit=n, concurrency=concurrency))["completed"]
        else:
            sent = asyncio.run(grade_pending_batch(limit=n))["sent"]
            cpu_sent = _cpu(pids)
            provider_seconds = _wait_for_provider(sim_port)  # the provider's time: left out
            cpu_provider = _cpu(pids) - cpu_sent
            collected = asyncio.run(grade_pending_batch(limit=n))["collected"]
            graded = sum(c["completed"] for c in collected)
            row["batch_sent"] = sent["jobs"]
        seconds = time.perf_counter() - t0 - provider_seconds
        cpu = _cpu(pids) - cpu0 - (cpu_provider if variant == "batch" else 0.0)
        runs = _task_runs() - runs0
        with conn() as c:
            tokens = c.execute(
                "SELECT coalesce(sum(prompt_tokens), 0) AS p, "
                "coalesce(sum(completion_tokens), 0) AS c FROM grader.grades"
            ).fetchone()
        cost = call_cost(
            "gpt-4o-mini", tokens["p"], tokens["c"], DEFAULT_PRICES, batch=variant == "batch"
        )
        row[variant] = {
            "completed": graded,
            "seconds": round(seconds, 2),
            "jobs_per_s": round(graded / seconds, 2),
            "cpu_ms_per_job": round(cpu / max(graded, 1) * 1000, 2),
            "task_runs_per_1000": round(runs / max(graded, 1) * 1000, 1),
            "usd_per_1000_essays": round((cost or 0) / max(graded, 1) * 1000, 4),
        }
        if variant == "batch":
            row[variant]["provider_seconds_left_out"] = round(provider_seconds, 2)
        print(f"  batch bench {variant}: {row[variant]}", flush=True)
    row["cpu_ratio_batch_to_baseline"] = round(
        row["batch"]["cpu_ms_per_job"] / row["baseline"]["cpu_ms_per_job"], 2
    )
    row["cpu_ratio_prefect_to_baseline"] = round(
        row["prefect"]["cpu_ms_per_job"] / row["baseline"]["cpu_ms_per_job"], 2
    )
    return row


# --- 4. result latency ------------------------------------------------------------------------


def bench_result_latency(trials: int) -> dict:
    reset()
    ids = submissions(2 * trials)
    settings = Settings.from_env()
    client = GradingService(settings)
    results = {}
    for mode, listen in (("polling_2s", False), ("listen_notify", True)):
        gaps = []
        for submission_id in ids[:trials] if listen else ids[trials:]:
            task_id = client.start_grading_job(submission_id)
            seen: list[float] = []

            def wait(task_id=task_id, seen=seen, listen=listen) -> None:
                client.wait_for_grade(task_id, timeout=30, listen=listen)
                seen.append(time.perf_counter())

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.3 + 1.7 * (len(gaps) % 7) / 7)  # commit at varied points of the poll
            committed = asyncio.run(_claim_and_complete(settings, task_id))
            waiter.join()
            gaps.append(seen[0] - committed)
        results[mode] = {**ms(gaps), "mean_ms": round(statistics.mean(gaps) * 1000, 3)}
    return results


async def _claim_and_complete(settings: Settings, task_id: uuid.UUID) -> float:
    from grader.grading.grade import CriterionScore, Grade

    grade = Grade(
        criteria=tuple(
            CriterionScore(
                key=c.key, name=c.name, score=1, max_points=c.max_points, justification=""
            )
            for c in RUBRIC.criteria
        ),
        feedback="",
        model="simulated:bench",
        prompt_tokens=1,
        completion_tokens=1,
        model_attempts=1,
    )
    async with open_async_pool(settings, max_size=1) as pool:
        job = await claim_job(pool, task_id, settings)
        await complete_job(pool, job, grade)  # returns once committed
        return time.perf_counter()


# --- main -------------------------------------------------------------------------------------


def _report_bench(jobs_count: int) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report_bench.py"), "--jobs", str(jobs_count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads((ROOT / "bench" / "results" / "report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description="grader benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the bench")
    parser.add_argument(
        "--only",
        choices=["status", "result_latency", "throughput", "trigger", "report", "batch"],
        help="run one section",
    )
    parser.add_argument("--batch-jobs", type=int, default=10_000, help="jobs in section 6")
    args = parser.parse_args()
    quick = args.quick

    def wanted(section: str) -> bool:
        return args.only == section if args.only else section != "batch"

    started = time.monotonic()
    database_url(Settings.from_env())  # embedded server in the bench's private home, migrated
    sim_port = 8991
    sim = subprocess.Popen(
        [sys.executable, "-m", "essay_grader.cli", "simulate-llm", "--port", str(sim_port)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{sim_port}/v1"
    time.sleep(1)
    result: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick}
    # One Prefect server on PostgreSQL, as `grader up` runs it, for the flows and the hand-off;
    # set before Prefect is first imported so that every flow run reports to it.
    server, api = _prefect_server_with_deployment()
    os.environ["PREFECT_API_URL"] = api
    try:
        if wanted("status"):
            print("status lookup...", flush=True)
            result["status"] = bench_status(20_000 if quick else 1_000_000, 200 if quick else 2000)
        if wanted("result_latency"):
            print("result latency...", flush=True)
            result["result_latency"] = bench_result_latency(5 if quick else 20)
        if wanted("throughput"):
            print("throughput...", flush=True)
            result["throughput"] = bench_throughput(
                100 if quick else 2000,
                [0, 1000],
                [50] if quick else [50, 100, 200],
                sim_port,
                sim.pid,
            )
        if wanted("batch"):
            print("batch mode...", flush=True)
            result["batch"] = bench_batch(200 if quick else args.batch_jobs, 50, sim_port, sim.pid)
        if wanted("trigger"):
            print("trigger latency...", flush=True)
            os.environ.pop("PREFECT_API_URL")
            result["trigger"] = bench_trigger(200 if quick else 2000, 100 if quick else 500, api)
    finally:
        os.killpg(sim.pid, 15)
        os.killpg(server.pid, 15)
        server.wait(30)
        close_pools()
        from grader.store.embedded import stop_embedded

        stop_embedded(Settings.from_env())
    if wanted("report"):
        print("report...", flush=True)
        result["report"] = _report_bench(20_000 if quick else 1_000_000)
    result["seconds"] = round(time.monotonic() - started, 1)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = args.only or "latest"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    table = markdown(result)
    (out / f"{name}.md").write_text(table)
    print(table)
    print(f"bench took {result['seconds']}s; results in {out}/{name}.json and {name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
