"""The weekly report's reads over a window: its jobs as narrow CSV (streamed with COPY), and the
figures PostgreSQL shrinks (failure reasons grouped, tokens summed, scores counted, the review
queue and teachers' decisions, grades by mode, the evaluation runs' grades), each a table.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from grader.store.monitoring import Table, copy_csv, table


def report_jobs_csv(conn: psycopg.Connection, since: datetime, until: datetime) -> bytes:
    """The window's jobs as narrow CSV (times as epoch seconds)."""
    return copy_csv(conn, "report_jobs", {"since": since, "until": until})


def report_tables(
    conn: psycopg.Connection, since: datetime, until: datetime, tz: str, top_errors: int
) -> dict[str, Table]:
    """The window's figures by name: errors (the `top_errors` commonest failure reasons), tokens,
    scores, total_scores, review_queue (one row), review_decisions (by day in the time zone
    `tz`), review_changes, review_reasons, grades_by_mode and evaluation_grades (one row)."""
    params = {"since": since, "until": until}
    return {
        "errors": table(conn, "report_errors", {**params, "limit": top_errors}),
        "tokens": table(conn, "report_tokens", params),
        "scores": table(conn, "report_scores", params),
        "total_scores": table(conn, "report_total_scores", params),
        "review_queue": table(conn, "report_review_queue", params),
        "review_decisions": table(conn, "report_review_decisions", {**params, "tz": tz}),
        "review_changes": table(conn, "report_review_changes", params),
        "review_reasons": table(conn, "report_review_reasons", params),
        "grades_by_mode": table(conn, "report_grades_by_mode", params),
        "evaluation_grades": table(conn, "report_evaluation_grades", params),
    }
