"""What the jobs table says, for the tests that check that no job was lost and none was graded
twice."""

from __future__ import annotations

import psycopg


def job_summary(conn: psycopg.Connection) -> dict:
    return conn.execute(
        "SELECT count(*) AS jobs, "
        "count(*) FILTER (WHERE t.status = 'completed') AS completed, "
        "count(*) FILTER (WHERE t.status = 'failed') AS failed, "
        "count(*) FILTER (WHERE t.status IN ('pending', 'processing')) AS unfinished, "
        "count(*) FILTER (WHERE t.status = 'completed' AND g.n IS DISTINCT FROM 1) "
        "    AS completed_without_exactly_one_grade, "
        "count(*) FILTER (WHERE t.status <> 'completed' AND g.n IS NOT NULL) "
        "    AS graded_but_not_completed, "
        "max(t.attempts) AS max_attempts "
        "FROM grader.background_tasks t "
        "LEFT JOIN (SELECT task_id, count(*) AS n FROM grader.grades GROUP BY task_id) g "
        "USING (task_id)"
    ).fetchone()
