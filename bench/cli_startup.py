"""Benchmark: how fast the `grader` command starts, against `python -c pass` in the same run.

    .venv/bin/python bench/cli_startup.py [--runs N]

Times, interleaved round by round so that a busy moment hits every command alike: the bare
interpreter (`python -c pass`, the baseline), `grader --help`, and `grader status TASK_ID` for a
completed job, on the default embedded PostgreSQL (started before timing) and on a server named
by DATABASE_URL. Prints medians and ratios, and the median CPU time (user + system) of each
command's process, which a machine busy with other work inflates less than the wall time; writes
bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The command's wall time and its process's CPU time."""
    cpu = _cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return elapsed, _cpu_of_children() - cpu


def _grader(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "grader"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="grader-cli-bench-"))
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PREFECT_API_URL")},
        "GRADER_HOME": str(home),
    }
    essay = home / "essay.txt"
    essay.write_text("Homework builds habits, but it takes time from rest and family.\n")
    try:
        # a job to look at, in the embedded database (this starts and migrates the server)
        submission = _grader("submit", str(essay), env=env)
        task = _grader("grade", submission, env=env)
        external_env = {**env, "DATABASE_URL": _embedded_url(home)}
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "grader --help": ([str(BIN / "grader"), "--help"], env),
            "grader status (embedded PostgreSQL)": ([str(BIN / "grader"), "status", task], env),
            "grader status (DATABASE_URL)": (
                [str(BIN / "grader"), "status", task],
                external_env,
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu_times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (command, command_env) in commands.items():
                wall, cpu = _time(command, command_env)
                times[name].append(wall)
                cpu_times[name].append(cpu)
    finally:
        subprocess.run([str(BIN / "grader"), "db", "stop"], env=env, capture_output=True)
    base = statistics.median(times["python -c pass"])
    result = {
        name: {
            "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3),
            "ratio_to_python": round(statistics.median(values) / base, 1),
            "median_cpu_s": round(statistics.median(cpu_times[name]), 3),
        }
        for name, values in times.items()
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli_startup.json").write_text(json.dumps(result, indent=2))
    print(f"{'command':<40} {'median':>8} {'min':>8} {'x python':>9} {'cpu':>8}")
    for name, row in result.items():
        print(
            f"{name:<40} {row['median_s']:>7.3f}s {row['min_s']:>7.3f}s "
            f"{row['ratio_to_python']:>8.1f}x {row['median_cpu_s']:>7.3f}s"
        )
    return 0


def _embedded_url(home: Path) -> str:
    """The embedded server's connection string, as DATABASE_URL would name it."""
    from grader.settings import Settings
    from grader.store.connections import database_url

    return database_url(Settings.from_env({"GRADER_HOME": str(home)}))


if __name__ == "__main__":
    sys.exit(main())
