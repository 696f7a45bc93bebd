"""Benchmark: the review queue's first page with many grades waiting, and the gradebook export
of N grades (default 1,000,000, of which 100,000 need review), each beside a baseline in the
same run.

    .venv/bin/python bench/review_bench.py [--grades N] [--waiting W]

Uses DATABASE_URL's server if set (as an admin URL), else a private embedded PostgreSQL, with a
scratch database filled in SQL and vacuumed (as autovacuum leaves a table at rest). Then:

- queue: what the review page's handler asks the database for its first page (the page of 50
  and the counts by state and reason), median of 20 rounds; baseline: the bare page query
  (`SELECT ... FROM grader.grades WHERE review_state = 'needs_review' ORDER BY created_at LIMIT
  50`, no joins, no counts);
- export: `grader export --out FILE` as a subprocess (wall time, its own peak RSS); baseline:
  `COPY` of the same grades' rows (with their criteria as JSON) to a file by psycopg, in this
  process: the database's side of the work alone.

Writes bench/results/review.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import run_grader, scratch_database, write_result
from grader.store import review
from grader.store.migrations import migrate

SCRATCH = "grader_bench_review"

FILL = """
INSERT INTO grader.rubrics (rubric_id, name, definition, content_sha256)
VALUES ('00000000-0000-0000-0000-000000000001', 'bench',
        '{"name": "bench", "criteria": [{"key": "thesis"}, {"key": "evidence"},
          {"key": "organization"}, {"key": "language"}]}', 'bench');
INSERT INTO grader.submissions (submission_id, student_ref, essay, content_sha256, rubric_id)
SELECT md5(i::text)::uuid, CASE WHEN i %% 1000 = 0 THEN '=cmd|' || i ELSE 'pupil, "' || i || '"'
       END, 'An essay.', md5(i::text), '00000000-0000-0000-0000-000000000001'
FROM generate_series(1, %(grades)s) AS i;
INSERT INTO grader.background_tasks (task_id, status, input_data, created_at, completed_at)
SELECT md5('t' || i)::uuid, 'completed', '{}'::jsonb,
       now() - make_interval(secs => %(grades)s - i), now() - make_interval(secs => %(grades)s - i)
FROM generate_series(1, %(grades)s) AS i;
INSERT INTO grader.grades (task_id, submission_id, rubric_id, total_score, max_score, criteria,
                           feedback, model, review_state, review_reasons, created_at)
SELECT md5('t' || i)::uuid, md5(i::text)::uuid, '00000000-0000-0000-0000-000000000001', 20, 40,
       '[{"key": "thesis", "score": 5, "max_points": 10}, {"key": "evidence", "score": 5,
         "max_points": 10}, {"key": "organization", "score": 5, "max_points": 10},
         {"key": "language", "score": 5, "max_points": 10}]'::jsonb,
       '', 'gpt-4o-mini',
       CASE WHEN i %% (%(grades)s / %(waiting)s) = 0 THEN 'needs_review' ELSE 'auto' END,
       CASE WHEN i %% (%(grades)s / %(waiting)s) = 0
            THEN '[{"reason": "low_confidence", "detail": ["thesis"]}]'::jsonb
            ELSE '[]'::jsonb END,
       now() - make_interval(secs => %(grades)s - i)
FROM generate_series(1, %(grades)s) AS i;
VACUUM ANALYZE;
"""

BASELINE_PAGE = """
SELECT grade_id, task_id, total_score, max_score, review_reasons, created_at
FROM grader.grades WHERE review_state = 'needs_review' ORDER BY created_at, grade_id LIMIT 50
"""


def _median_ms(work, rounds: int = 20) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grades", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="grader-review-bench-"))
    result: dict = {"grades": args.grades, "waiting": args.waiting}
    with scratch_database(tmp, SCRATCH) as url:
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            migrate(conn)
            for statement in FILL.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"grades": args.grades, "waiting": args.waiting})
            result["fill_s"] = round(time.perf_counter() - started, 1)

            result["baseline_page_ms"] = _median_ms(lambda: conn.execute(BASELINE_PAGE).fetchall())
            result["queue_page_ms"] = _median_ms(lambda: review.queue(conn, limit=50))
            result["queue_counts_ms"] = _median_ms(lambda: review.counts(conn))
            result["queue_first_page_ms"] = round(
                result["queue_page_ms"] + result["queue_counts_ms"], 2
            )
            result["queue_ratio"] = round(
                result["queue_first_page_ms"] / result["baseline_page_ms"], 1
            )

            started = time.perf_counter()
            with (
                open(tmp / "copy.csv", "wb") as out,
                conn.cursor().copy(
                    "COPY (SELECT s.student_ref, g.submission_id, g.task_id, g.total_score, "
                    "g.max_score, g.criteria, g.review_state, g.reviewed_by, g.created_at "
                    "FROM grader.grades g JOIN grader.submissions s "
                    "ON s.submission_id = g.submission_id ORDER BY g.created_at) "
                    "TO STDOUT (FORMAT csv)"
                ) as copy,
            ):
                for data in copy:
                    out.write(data)
            result["baseline_copy_s"] = round(time.perf_counter() - started, 2)

        seconds, peak = run_grader(url, "export", "--out", str(tmp / "grades.csv"))
        result["export_s"], result["export_peak_rss_mb"] = round(seconds, 2), round(peak, 1)
        result["export_mb"] = round((tmp / "grades.csv").stat().st_size / 1e6, 1)
        result["export_ratio"] = round(result["export_s"] / result["baseline_copy_s"], 1)
    write_result("review", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
