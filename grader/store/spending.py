"""Spending caps: a daily and a monthly limit in USD on what grading spends on the model.

Each grade's cost (grader.pricing) is added to the day's spending in the statement that stores
the grade. While a cap is reached, claims take no jobs: grading pauses, jobs stay pending, and
their status says why (grader.spending_pause_reason() in the database, so every worker and every
status check agree). Grading resumes when the period rolls over (UTC days and months) or the cap
is raised. Jobs already being graded when the cap is reached finish, so the spending can pass a
cap by at most what the jobs in flight cost.

A provider batch is paid for when it is collected, hours after its jobs were claimed, so a batch
is sized before it is sent: it holds no more jobs than the caps' remaining money covers at batch
prices, counting the jobs that open batches already hold, each estimated from the tokens of the
last 200 grades (`batch_allowance`).
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

from grader.errors import ConfigError
from grader.grading.pricing import Prices, call_cost
from grader.store.queries import query

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


def batch_allowance(conn: psycopg.Connection, prices: Prices) -> int | None:
    """How many jobs a new batch may hold within the caps (one over at most, as a synchronous
    claim may be); None when no cap is set or no grade yet tells what a job costs."""
    summary = spending(conn)
    left = [
        cap - spent
        for cap, spent in (
            (summary["daily_cap_usd"], summary["spent_today_usd"]),
            (summary["monthly_cap_usd"], summary["spent_this_month_usd"]),
        )
        if cap is not None
    ]
    if not left:
        return None
    recent = conn.execute(query("recent_grade_tokens")).fetchone()
    if recent is None:
        return None
    each = call_cost(
        recent["model"], recent["prompt_tokens"], recent["completion_tokens"], prices, batch=True
    )
    if not each:
        return None
    return max(0, math.ceil(min(left) / each) - recent["held_by_batches"])
