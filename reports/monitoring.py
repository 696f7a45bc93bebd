"""The three monitoring views operators used to write by hand: recent jobs with durations,
failed jobs with their reason and input, and grading-time statistics over the last days."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg

from grader.db import query


def query_frame(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """A named query's rows as a DataFrame (with its columns even when there are no rows)."""
    cur = conn.execute(query(name), params)
    return pd.DataFrame(cur.fetchall(), columns=[column.name for column in cur.description])


def recent_jobs(conn: psycopg.Connection, limit: int = 20) -> pd.DataFrame:
    return query_frame(conn, "recent_tasks", {"limit": limit})


def failed_jobs(conn: psycopg.Connection, limit: int = 20) -> pd.DataFrame:
    return query_frame(conn, "failed_tasks", {"limit": limit})


def grading_time_stats(conn: psycopg.Connection, days: int = 7) -> dict[str, Any]:
    row = conn.execute(query("grading_time_stats"), {"days": days}).fetchone()
    return {"days": days, **row}


def format_stats(stats: dict[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}s"

    return (
        f"last {stats['days']} days: {stats['completed']} completed, {stats['failed']} failed, "
        f"{stats['cancelled']} cancelled\n"
        f"grading time: average {seconds(stats['avg_seconds'])}, "
        f"minimum {seconds(stats['min_seconds'])}, maximum {seconds(stats['max_seconds'])}"
    )
