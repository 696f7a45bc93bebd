"""Benchmark: importing a human-scored set and computing the agreement of an evaluation run, at
N essays (default 100,000), each beside a baseline in the same run.

    .venv/bin/python bench/evaluation_bench.py [--essays N]

Uses DATABASE_URL's server if set (as an admin URL), else a private embedded PostgreSQL, with a
scratch database. Writes a synthetic CSV (id, essay of ~600 characters, four criterion scores,
a second rater), then times:

- import: `grader evaluate import` as a subprocess (wall time, peak RSS); baseline: reading the
  same file with pandas alone (`pd.read_csv`), in this process;
- metrics: an evaluation run of N graded essays filled in SQL, then the agreement figures and
  the report folder (results read from PostgreSQL, QWK with 1,000 bootstrap replicates per
  target, error bands, confusion matrices, charts, CSVs) in a subprocess (wall, peak RSS);
  baseline: scikit-learn's `cohen_kappa_score` alone on the same five targets' arrays.

Writes bench/results/evaluation.json.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, run_grader, scratch_database, write_result
from grader.store.migrations import migrate

SCRATCH = "grader_bench_evaluation"
CRITERIA = ("thesis", "evidence", "organization", "language")

# N completed grading jobs of the run, one per item, with the model one point off 30% of the
# time; all in SQL so the fill does not dominate the run.
FILL_RUN = """
INSERT INTO grader.evaluation_runs (run_id, set_id, label, model)
SELECT '00000000-0000-0000-0000-00000000000e', set_id, 'bench', 'gpt-4o-mini'
FROM grader.evaluation_sets WHERE name = 'bench';
WITH jobs AS (
    INSERT INTO grader.background_tasks (status, input_data, created_at, started_at,
                                         completed_at, evaluation_run_id)
    SELECT 'completed',
           jsonb_build_object('submission_id', i.submission_id, 'rubric_id', s.rubric_id),
           now() - interval '1 minute', now() - interval '50 seconds', now(),
           '00000000-0000-0000-0000-00000000000e'
    FROM grader.evaluation_items AS i JOIN grader.evaluation_sets AS s ON s.set_id = i.set_id
    WHERE s.name = 'bench'
    RETURNING task_id, input_data
)
INSERT INTO grader.grades (task_id, submission_id, rubric_id, total_score, max_score, criteria,
                           feedback, model, prompt_tokens, completion_tokens, cost_usd,
                           prompt_version)
SELECT j.task_id, (j.input_data ->> 'submission_id')::uuid,
       (j.input_data ->> 'rubric_id')::uuid, t.total, 40, t.criteria, '', 'gpt-4o-mini', 900,
       150, 0.000225, 'bench'
FROM jobs AS j
JOIN grader.evaluation_items AS i ON i.submission_id = (j.input_data ->> 'submission_id')::uuid,
LATERAL (
    SELECT jsonb_agg(jsonb_build_object('key', k, 'score', sc, 'max_points', 10,
                                        'justification', '', 'confidence',
                                        CASE WHEN sc = (i.human ->> k)::int THEN 'high'
                                             ELSE 'low' END)) AS criteria,
           sum(sc)::int AS total
    FROM (SELECT k, least(10, greatest(0, (i.human ->> k)::int
                   + CASE WHEN random() < 0.3 THEN (CASE WHEN random() < 0.5 THEN -1 ELSE 1 END)
                          ELSE 0 END)) AS sc
          FROM unnest(ARRAY['thesis', 'evidence', 'organization', 'language']) AS k) AS s
) AS t;
"""

METRICS = """
import resource, sys, time
from pathlib import Path
import psycopg
from psycopg.rows import dict_row
from grader.store import evaluation
from reports import agreement
started = time.perf_counter()
with psycopg.connect(sys.argv[1], row_factory=dict_row) as conn:
    run = evaluation.find_run(conn, "bench")
    data, jobs = evaluation.run_results(conn, run)
fetched = time.perf_counter()
result = agreement.compute(run, data, jobs)
computed = time.perf_counter()
agreement.write_report(result, Path(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(fetched - started, computed - fetched, time.perf_counter() - computed, peak)
"""


def _write_set(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    human = np.clip(np.round(rng.normal(6, 2, size=(n, 4))), 0, 10).astype(int)
    second = np.clip(human + rng.choice([-1, 0, 1], p=[0.2, 0.6, 0.2], size=human.shape), 0, 10)
    words = [
        "school",
        "students",
        "should",
        "learn",
        "because",
        "evidence",
        "shows",
        "that",
        "teachers",
        "and",
        "time",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "essay", *CRITERIA, *(f"second_{c}" for c in CRITERIA)])
        for i in range(n):
            essay = f"Essay {i}. " + " ".join(rng.choice(words, 90))
            writer.writerow([f"e{i}", essay, *human[i], *second[i]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essays", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="grader-evaluation-bench-"))
    result: dict = {"essays": args.essays}
    with scratch_database(tmp, SCRATCH) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        data = tmp / "set.csv"
        _write_set(data, args.essays)
        result["file_mb"] = round(data.stat().st_size / 1e6, 1)

        started = time.perf_counter()
        pd.read_csv(data)
        result["baseline_read_csv_s"] = round(time.perf_counter() - started, 3)
        seconds, peak = run_grader(url, "evaluate", "import", str(data), "--name", "bench")
        result["import_s"], result["import_peak_rss_mb"] = round(seconds, 3), round(peak, 1)
        result["import_ratio"] = round(result["import_s"] / result["baseline_read_csv_s"], 2)

        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(FILL_RUN)
            rows = conn.execute(
                "SELECT i.human, g.criteria, g.total_score FROM grader.grades AS g "
                "JOIN grader.evaluation_items AS i ON i.submission_id = g.submission_id"
            ).fetchall()
        pairs = {
            c: (
                np.array([r["human"][c] for r in rows]),
                np.array([next(x["score"] for x in r["criteria"] if x["key"] == c) for r in rows]),
            )
            for c in CRITERIA
        }
        from sklearn.metrics import cohen_kappa_score

        started = time.perf_counter()
        for human, model in pairs.values():
            cohen_kappa_score(human, model, weights="quadratic", labels=list(range(11)))
        result["baseline_sklearn_qwk_s"] = round(time.perf_counter() - started, 3)

        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", METRICS, url, str(tmp / "reports")],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result["metrics_s"] = round(time.perf_counter() - started, 3)
        if done.returncode:
            raise SystemExit(done.stderr)
        fetch, compute, write, peak_kb = (float(x) for x in done.stdout.split())
        result.update(
            metrics_fetch_s=round(fetch, 3),
            metrics_compute_s=round(compute, 3),
            metrics_report_s=round(write, 3),
            metrics_peak_rss_mb=round(peak_kb / 1024, 1),
        )
        result["metrics_ratio"] = round(result["metrics_s"] / result["baseline_sklearn_qwk_s"], 1)
    write_result("evaluation", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
