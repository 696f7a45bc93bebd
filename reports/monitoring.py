"""The three monitoring views operators used to write by hand: recent jobs with durations,
failed jobs with their reason and input, and grading-time statistics over the last days."""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg

from grader.store import monitoring
from grader.store.monitoring import Table


def frame(table: Table) -> pd.DataFrame:
    """A store table as a DataFrame (with its columns even when there are no rows)."""
    return pd.DataFrame(table.rows, columns=table.columns)


def recent_jobs(conn: psycopg.Connection, limit: int = 20) -> pd.DataFrame:
    return frame(monitoring.recent_jobs(conn, limit))


def failed_jobs(conn: psycopg.Connection, limit: int = 20) -> pd.DataFrame:
    return frame(monitoring.failed_jobs(conn, limit))


def format_stats(stats: dict[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}s"

    return (
        f"last {stats['days']} days: {stats['completed']} completed, {stats['failed']} failed, "
        f"{stats['cancelled']} cancelled\n"
        f"grading time: average {seconds(stats['avg_seconds'])}, "
        f"minimum {seconds(stats['min_seconds'])}, maximum {seconds(stats['max_seconds'])}"
    )
