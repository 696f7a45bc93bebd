"""Spending caps: a daily and a monthly limit in USD on what grading spends on the model.

Each grade's cost (grader.pricing) is added to the day's spending in the statement that stores
the grade. While a cap is reached, claims take no jobs: grading pauses, jobs stay pending, and
their status says why (grader.spending_pause_reason() in the database, so every worker and every
status check agree). Grading resumes when the period rolls over (UTC days and months) or the cap
is raised. Jobs already being graded when the cap is reached finish, so the spending can pass a
cap by at most what the jobs in flight cost.
"""

from __future__ import annotations

from typing import Any

import psycopg

from grader.db import query
from grader.errors import ConfigError

PERIODS = {"daily": "day", "monthly": "month"}


def set_cap(conn: psycopg.Connection, period: str, cap_usd: float | None) -> None:
    """Sets the daily or monthly cap; None removes it."""
    if cap_usd is None:
        conn.execute(query("remove_spending_cap"), {"period": PERIODS[period]})
    elif cap_usd < 0:
        raise ConfigError(f"a {period} cap must be at least 0, got {cap_usd}")
    else:
        conn.execute(query("set_spending_cap"), {"period": PERIODS[period], "cap_usd": cap_usd})


def spending(conn: psycopg.Connection) -> dict[str, Any]:
    """The caps, what today and this month cost so far, and why grading is paused, if it is."""
    return dict(conn.execute(query("spending_summary")).fetchone())


def format_spending(summary: dict[str, Any]) -> str:
    def cap(value: float | None) -> str:
        return "none" if value is None else f"${value:,.2f}"

    lines = [
        f"today (UTC)   ${summary['spent_today_usd']:,.4f} of {cap(summary['daily_cap_usd'])}",
        f"this month    ${summary['spent_this_month_usd']:,.4f} of "
        f"{cap(summary['monthly_cap_usd'])} ({summary['grades_this_month']} grades)",
    ]
    lines.append(summary["paused_reason"] or "grading is not paused")
    return "\n".join(lines)
