"""Benchmark: `grader report` over N jobs (default 1,000,000) against a baseline computed in the
same run: the same total-duration statistics from one SQL query (percentile_cont).

    .venv/bin/python bench/report_bench.py [--jobs N]

Uses DATABASE_URL's server if set (as an admin URL), else a private embedded PostgreSQL; creates
a scratch database, fills it with synthetic jobs and grades in SQL, then times, in this order,
the SQL baseline, `grader report` as a subprocess (wall time and peak RSS), and the baseline
again. Prints the figures and the ratio, and writes bench/results/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_database  # noqa: E402
from grader.store.migrations import migrate  # noqa: E402
from grader.store.queries import query  # noqa: E402

SCRATCH = "grader_bench_report"

FILL = """
INSERT INTO grader.rubrics (rubric_id, name, definition, content_sha256)
VALUES ('00000000-0000-0000-0000-000000000001', 'bench', '{}', 'bench');
INSERT INTO grader.submissions (submission_id, essay, content_sha256, rubric_id)
VALUES ('00000000-0000-0000-0000-000000000002', 'x', 'x', '00000000-0000-0000-0000-000000000001');
-- Jobs over the 7 days before `until`: 1 in 100 still pending, 1 in 20 failed, the rest completed.
INSERT INTO grader.background_tasks (status, input_data, attempts, created_at, started_at,
                                     completed_at, error_message)
SELECT s, '{}'::jsonb, 1 + (i %% 7 = 0)::int, c,
       CASE WHEN s <> 'pending' THEN c + make_interval(secs => w) END,
       CASE WHEN s <> 'pending' THEN c + make_interval(secs => w + p) END,
       CASE WHEN s = 'failed' THEN format('model API error %%s (retries exhausted): task %%s',
                                          500 + i %% 4, gen_random_uuid()) END
FROM generate_series(1, %(jobs)s) AS i,
     LATERAL (SELECT CASE WHEN i %% 100 = 0 THEN 'pending' WHEN i %% 20 = 1 THEN 'failed'
                          ELSE 'completed' END AS s,
                     %(until)s::timestamptz - make_interval(secs => random() * 604800) AS c,
                     random() * 5 AS w, 2 + random() * random() * 60 AS p) AS t;
INSERT INTO grader.grades (task_id, submission_id, rubric_id, total_score, max_score, criteria,
                           feedback, model, prompt_tokens, completion_tokens)
SELECT task_id, '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001',
       20, 40,
       jsonb_build_array(
           jsonb_build_object('key', 'thesis', 'score', (random() * 10)::int, 'max_points', 10),
           jsonb_build_object('key', 'evidence', 'score', (random() * 10)::int, 'max_points', 10)),
       '', CASE WHEN random() < 0.5 THEN 'gpt-4o-mini' ELSE 'gpt-4o' END, 900, 150
FROM grader.background_tasks WHERE status = 'completed';
"""


def _baseline(url: str, since: str, until: str) -> tuple[float, dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        row = conn.execute(
            query("report_total_percentiles"), {"since": since, "until": until}
        ).fetchone()
        return time.perf_counter() - started, row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    until = "2026-11-09T00:00:00+00:00"
    since = "2026-11-02T00:00:00+00:00"
    with (
        tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp,
        scratch_database(Path(tmp), SCRATCH) as url,
    ):
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            migrate(conn)
            with conn.transaction():
                for statement in FILL.split(";\n"):
                    if statement.strip():
                        conn.execute(statement, {"jobs": args.jobs, "until": until})
            conn.execute("ANALYZE")
        print(f"filled {args.jobs:,} jobs in {time.perf_counter() - started:.1f}s")

        sql_first, row = _baseline(url, since, until)
        env = {**os.environ, "DATABASE_URL": url}
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "essay_grader.cli",
                "report",
                "--since",
                since,
                "--until",
                until,
                "--out",
                str(Path(tmp) / "reports"),
                "--json",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        report_seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sql_second, _ = _baseline(url, since, until)
        summary = json.loads(done.stdout)

    sql_seconds = min(sql_first, sql_second)
    result = {
        "jobs": args.jobs,
        "report_seconds": round(report_seconds, 3),
        "report_peak_rss_mb": round(peak_rss_mb, 1),
        "sql_baseline_seconds": round(sql_seconds, 3),
        "ratio_report_to_sql": round(report_seconds / sql_seconds, 2),
        "targets": {"report_seconds": 10, "report_peak_rss_mb": 1024},
        "report_p95_total_seconds": summary["p95_total_seconds"],
        "sql_p95_total_seconds": round(row["percentiles"][2], 3),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=2))
    print(
        f"grader report over {args.jobs:,} jobs: {report_seconds:.2f}s wall, peak RSS "
        f"{peak_rss_mb:.0f} MB (targets 10 s, 1024 MB)\n"
        f"SQL baseline (percentile_cont of total duration, one query): {sql_seconds:.2f}s\n"
        f"ratio report / SQL: {result['ratio_report_to_sql']}x (the report computes ~15 tables "
        "and 3 charts; the baseline one table)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
