"""Spending caps: a reached cap pauses grading (jobs stay pending, with the reason in their
status) and grading resumes when the cap is raised or the period rolls over. The simulator's
tokens are priced by a price file here, so that grading spends (simulated) money."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from essay_grader import check_grading_status, start_grading_job, submit_essay
from flows.grading import grade_pending, grade_submission
from grader.grading.pricing import load_prices
from grader.store import spending
from model_simulator import LLMSimulator
from tests.support.cli import run_main

ESSAY = "Cities should plant more trees: shade, cleaner air, and calmer streets for everyone."


@pytest.fixture
def priced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated calls cost $10 per million prompt tokens and $30 per million completion
    tokens: a few hundredths of a cent per grade."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"simulated:": {"input": 10.0, "output": 30.0}}))
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    load_prices.cache_clear()
    yield
    load_prices.cache_clear()


def _jobs(n: int) -> list[UUID]:
    return [start_grading_job(submit_essay(f"{ESSAY} ({i})")) for i in range(n)]


def _costs(conn: psycopg.Connection) -> list[float]:
    rows = conn.execute("SELECT cost_usd::float8 AS c FROM grader.grades ORDER BY created_at")
    return [row["c"] for row in rows.fetchall()]


def _statuses(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM grader.background_tasks GROUP BY 1")
    return {row["status"]: row["n"] for row in rows.fetchall()}


def test_daily_cap_pauses_then_raising_it_and_the_day_rolling_over_resume(
    conn: psycopg.Connection, simulator: LLMSimulator, priced: None
) -> None:
    ids = _jobs(8)
    # One grade first, to learn what a grade costs here; then a cap worth about 2.5 grades.
    assert asyncio.run(grade_pending(1, 1))["completed"] == 1
    (first,) = _costs(conn)
    assert first > 0
    spending.set_cap(conn, "daily", round(first * 2.5, 6))

    outcomes = asyncio.run(grade_pending(10, 1))
    costs = _costs(conn)
    cap = spending.spending(conn)["daily_cap_usd"]
    # it stopped claiming at the first claim that found the cap reached, not before, not after
    assert sum(costs[:-1]) < cap <= sum(costs)
    assert outcomes == {"completed": len(costs) - 1, "failed": 0, "lost": 0}
    assert _statuses(conn) == {"completed": len(costs), "pending": 8 - len(costs)}

    waiting = next(t for t in ids if check_grading_status(t).status == "pending")
    reason = check_grading_status(waiting).paused_reason
    assert reason.startswith("paused: the daily spending cap of $")
    assert "resumes at midnight UTC or when the cap is raised" in reason
    assert check_grading_status(ids[0]).paused_reason is None  # completed: not paused

    # An on-demand run leaves the job pending and says why.
    state = asyncio.run(grade_submission(waiting, return_state=True))
    assert state.is_completed() and "left pending: paused" in state.message
    assert check_grading_status(waiting).status == "pending"

    # Raising the cap resumes grading at once.
    spending.set_cap(conn, "daily", round(sum(costs) + first * 1.5, 6))
    assert asyncio.run(grade_pending(10, 1))["completed"] >= 1
    done_after_raise = _statuses(conn)["completed"]
    assert done_after_raise > len(costs)

    # The day rolls over: today's spending becomes yesterday's; the rest are graded.
    if done_after_raise < 8:
        assert spending.spending(conn)["paused_reason"] is not None
    conn.execute("UPDATE grader.daily_spending SET day = day - 1")
    summary = spending.spending(conn)
    assert summary["spent_today_usd"] == 0 and summary["paused_reason"] is None
    asyncio.run(grade_pending(10, 1))
    assert _statuses(conn) == {"completed": 8}
    # every grade's cost went into the spending, exactly once
    spent = conn.execute(
        "SELECT sum(cost_usd)::float8 AS s, sum(grades) AS n FROM grader.daily_spending"
    ).fetchone()
    assert spent["n"] == 8
    assert spent["s"] == pytest.approx(sum(_costs(conn)))


def test_monthly_cap_is_named_and_wins_over_daily(
    conn: psycopg.Connection, simulator: LLMSimulator, priced: None
) -> None:
    ids = _jobs(2)
    spending.set_cap(conn, "daily", 0)
    spending.set_cap(conn, "monthly", 0)
    assert asyncio.run(grade_pending(10, 2)) == {"completed": 0, "failed": 0, "lost": 0}
    reason = check_grading_status(ids[0]).paused_reason
    assert reason.startswith("paused: the monthly spending cap of $0.00 is reached")
    spending.set_cap(conn, "monthly", None)
    assert "daily" in check_grading_status(ids[0]).paused_reason
    spending.set_cap(conn, "daily", None)
    assert check_grading_status(ids[0]).paused_reason is None
    assert asyncio.run(grade_pending(10, 2))["completed"] == 2


def test_budget_command(database_url: str) -> None:
    result = run_main("budget", "--daily", "2.5", "--monthly", "40", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["daily_cap_usd"] == 2.5 and summary["monthly_cap_usd"] == 40
    assert summary["paused_reason"] is None
    result = run_main("budget", "--daily", "none")
    assert result.returncode == 0, result.stderr
    assert "of none" in result.stdout and "of $40.00" in result.stdout
    result = run_main("budget", "--daily", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_pending_says_grading_is_paused(
    database_url: str, conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    task_id = _jobs(1)[0]
    spending.set_cap(conn, "monthly", 0)
    result = run_main("run-pending")
    assert result.returncode == 0, result.stderr
    assert "0 job(s)" in result.stdout
    assert "grading paused: the monthly spending cap of $0.00 is reached" in result.stdout
    assert check_grading_status(task_id).status == "pending"
