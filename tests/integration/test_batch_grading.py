"""Batch grading through the provider's Batch API (the simulator's, over HTTP): jobs sent as
one batch and collected by a later run, line errors sent back or failed, an expired batch's jobs
back to pending. (Exactly once across a kill -9 at each point of a run: tests/e2e.)"""

from __future__ import annotations

import asyncio
import hashlib
import json

import psycopg
import pytest

from essay_grader import check_grading_status, start_grading_job, submit_essay
from flows.batch import grade_pending_batch
from flows.grading import grade_pending
from grader.grading.pricing import load_prices
from grader.store import spending
from model_simulator import LLMSimulator
from reports.render import summary_paragraph
from reports.weekly import build_report, make_window
from tests.integration.test_recheck import ATTACKED
from tests.support.cli import run_main
from tests.support.jobs import job_summary


def _jobs(n: int, mode: str = "batch") -> list:
    return [
        start_grading_job(submit_essay(f"Trees make schools better. Essay {i}."), mode=mode)
        for i in range(n)
    ]


def _statuses(task_ids) -> list[str]:
    return [check_grading_status(t).status for t in task_ids]


def test_a_batch_is_sent_then_collected_at_half_the_price(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # the simulated model at $1 per million tokens both ways, so that the price shows
    prices = tmp_path / "prices.toml"
    prices.write_text('["simulated:"]\ninput = 1.0\noutput = 1.0\n')
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    simulator.batches.config.seconds = 60  # the provider is still working at the first look
    task_ids = _jobs(30)
    first = asyncio.run(grade_pending_batch())
    assert first["sent"]["jobs"] == 30 and first["collected"] == []
    assert set(_statuses(task_ids)) == {"processing"}
    second = asyncio.run(grade_pending_batch())  # still in progress: nothing changes
    assert second["collected"][0]["status"] == "in_progress" and second["sent"] is None
    simulator.batches.config.seconds = 0
    third = asyncio.run(grade_pending_batch())
    assert third["collected"][0]["completed"] == 30
    assert set(_statuses(task_ids)) == {"completed"}
    assert len(simulator.batches.store.batches) == 1  # one paid batch
    rows = conn.execute(
        "SELECT count(*) AS grades FROM grader.grades WHERE task_id = ANY(%s)", (task_ids,)
    ).fetchone()
    assert rows["grades"] == 30
    grade = check_grading_status(task_ids[0]).grade
    assert grade.simulated and grade.prompt_version
    tokens = grade.prompt_tokens + grade.completion_tokens
    assert grade.cost_usd == pytest.approx(tokens * 1.0 / 1e6 * 0.5, abs=1e-6)  # half price

    # the weekly report counts them as batch grades, with what the batch saved
    week = build_report(conn, make_window(None, None, "UTC"), load_prices(str(prices)))
    modes = week.tables["grades_by_mode"].set_index("mode")
    assert modes.loc["batch", "grades"] == 30
    # at half price the saving is what was paid (each grade's cost is rounded to $0.000001)
    assert modes.loc["batch", "saving_usd"] == pytest.approx(
        modes.loc["batch", "cost_usd"], abs=30e-6
    )
    assert week.summary["batch_grades"] == 30
    assert "30 grades went through batches, saving $" in summary_paragraph(week)


def test_line_errors_and_an_expired_batch_send_jobs_back(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.script = ["429", "400"]  # the first two lines; the rest answer
    task_ids = _jobs(4)
    asyncio.run(grade_pending_batch())
    result = asyncio.run(grade_pending_batch())
    counts = result["collected"][0]
    assert (counts["completed"], counts["requeued"], counts["failed"]) == (2, 1, 1)
    statuses = sorted(_statuses(task_ids))
    assert statuses == ["completed", "completed", "failed", "processing"], statuses
    # the 429 line's job went back to pending and this run sent it again, in a new batch
    assert result["sent"]["jobs"] == 1

    simulator.batches.config.seconds = 60
    simulator.batches.config.expire_after_seconds = 0
    simulator.batches.config.expire_done_share = 0.0
    more = _jobs(3)
    # the 1-job batch expires unanswered: its job goes back, and is sent again with the 3
    again = asyncio.run(grade_pending_batch())
    assert again["collected"][0]["status"] == "expired" and again["sent"]["jobs"] == 4
    expired = asyncio.run(grade_pending_batch())
    assert [c["status"] for c in expired["collected"]] == ["expired"]
    # the job first sent back after its 429 has now been sent 3 times (GRADER_MAX_ATTEMPTS):
    # it fails with the reason; the other three go out again
    assert expired["collected"][0]["requeued"] == 4 and expired["sent"]["jobs"] == 3
    assert set(_statuses(more)) == {"processing"}  # never lost: held by the newest batch
    assert sorted(_statuses(task_ids)) == ["completed", "completed", "failed", "failed"]


@pytest.mark.parametrize("limit", [0, 50_001])
def test_limit_is_checked(conn: psycopg.Connection, limit: int) -> None:
    with pytest.raises(Exception, match="limit must be between"):
        asyncio.run(grade_pending_batch(limit))


def test_the_command_line_lists_shows_and_cancels_a_batch(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.batches.config.seconds = 60
    task_ids = _jobs(3)
    sent = asyncio.run(grade_pending_batch())["sent"]["batch"]
    listed = json.loads(run_main("batch", "list", "--json").stdout)
    assert [b["provider_batch_id"] for b in listed] == [sent]
    assert listed[0]["job_statuses"] == {"processing": 3} and listed[0]["status"] == "submitted"
    status = run_main("status", str(task_ids[0]))
    assert f"batch       provider batch {sent} (answers come within 24 h)" in status.stdout
    assert run_main("batch", "show").returncode == 1
    cancelled = run_main("batch", "cancel", sent)
    assert cancelled.returncode == 0, cancelled.stderr
    after = asyncio.run(grade_pending_batch())
    assert after["collected"][0]["status"] == "cancelled"
    assert after["collected"][0]["requeued"] == 3 and after["sent"]["jobs"] == 3
    missing = run_main("batch", "show", "nope")
    assert missing.returncode == 1 and "no batch with reference" in missing.stderr


def test_a_batch_fits_the_spending_cap_and_its_grades_count_at_batch_prices(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    prices = tmp_path / "prices.json"  # batch prices of their own: a fifth, not the default half
    prices.write_text(
        json.dumps(
            {"simulated:": {"input": 1000, "output": 3000, "batch_input": 200, "batch_output": 600}}
        )
    )
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    simulator.batches.config.seconds = 0
    task_ids = _jobs(12)
    _jobs(1, "now")
    assert asyncio.run(grade_pending(10, 1))["completed"] == 1  # one synchronous grade
    (synchronous,) = conn.execute("SELECT cost_usd::float8 AS c FROM grader.grades").fetchall()
    # room for three and a half batch grades
    spending.set_cap(conn, "daily", round(synchronous["c"] * (1 + 3.5 / 5), 2))
    sent = asyncio.run(grade_pending_batch())["sent"]
    assert sent["jobs"] == 4  # sized to the cap: 3.5 grades' worth, rounded up
    collected = asyncio.run(grade_pending_batch())
    assert collected["collected"][0]["completed"] == 4 and collected["sent"] is None  # paused
    costs = [
        r["c"]
        for r in conn.execute(
            "SELECT g.cost_usd::float8 AS c FROM grader.grades AS g "
            "JOIN grader.background_tasks AS t USING (task_id) WHERE t.batch_ref IS NOT NULL"
        )
    ]
    assert len(costs) == 4
    assert all(c == pytest.approx(synchronous["c"] / 5, rel=0.05) for c in costs)
    spent = spending.spending(conn)
    assert spent["spent_today_usd"] == pytest.approx(synchronous["c"] + sum(costs))
    assert spent["paused_reason"].startswith("paused: the daily spending cap")
    assert sorted(_statuses(task_ids)).count("pending") == 8


def test_a_job_is_graded_the_way_it_asked_and_a_failed_line_may_go_synchronous(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    (now,) = _jobs(1, "now")
    batch = _jobs(3)
    waiting = run_main("status", str(batch[0]))
    assert "waiting for the next batch run" in waiting.stdout
    assert asyncio.run(grade_pending(10, 1))["completed"] == 1  # the 'now' job only
    assert _statuses([now, *batch]) == ["completed", "pending", "pending", "pending"]

    monkeypatch.setenv("GRADER_BATCH_RETRY", "synchronous")
    simulator.config.script = ["429"]  # the first line fails with a retryable error
    assert asyncio.run(grade_pending_batch())["sent"]["jobs"] == 3
    counts = asyncio.run(grade_pending_batch())["collected"][0]
    assert (counts["completed"], counts["requeued"]) == (2, 1)
    (back,) = [t for t in batch if check_grading_status(t).status == "pending"]
    assert check_grading_status(back).mode == "now"  # not the next batch: grading now
    assert asyncio.run(grade_pending_batch())["sent"] is None
    assert asyncio.run(grade_pending(10, 1))["completed"] == 1
    assert set(_statuses(batch)) == {"completed"}

    bad = run_main("grade", str(submit_essay("An essay.")), "--batch", "--wait")
    assert bad.returncode == 1 and "do not go together" in bad.stderr


def test_lines_out_of_order_each_reach_their_own_job(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    # the simulator told each essay's scores (by its hash): thesis = i, the rest 10 - i
    essays = [f"Essay {i}: schools should start later." for i in range(8)]
    simulator.config.reference = {
        hashlib.sha256(e.encode()).hexdigest(): {
            "thesis": i,
            "evidence": 10 - i,
            "organization": 10 - i,
            "language": 10 - i,
        }
        for i, e in enumerate(essays)
    }
    batch = [start_grading_job(submit_essay(e), mode="batch") for e in essays]
    simulator.batches.config.shuffle = True
    asyncio.run(grade_pending_batch())
    assert asyncio.run(grade_pending_batch())["collected"][0]["completed"] == 8
    for i, task_id in enumerate(batch):
        scores = {c.key: c.score for c in check_grading_status(task_id).grade.criteria}
        assert scores["thesis"] == i and scores["evidence"] == 10 - i, (i, scores)


def test_a_broken_line_and_an_answer_that_does_not_fit_are_asked_again(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    task_ids = _jobs(5)
    simulator.batches.config.corrupt_lines = 1  # the first output line: broken JSON
    simulator.config.script = ["ok", "malformed"]  # the second line: an answer that is no JSON
    asyncio.run(grade_pending_batch())
    result = asyncio.run(grade_pending_batch())
    counts = result["collected"][0]
    assert (counts["completed"], counts["malformed"], counts["requeued"]) == (3, 1, 2)
    assert result["sent"]["jobs"] == 2  # both asked again, in the next batch
    simulator.batches.config.corrupt_lines = 0
    assert asyncio.run(grade_pending_batch())["collected"][0]["completed"] == 2
    assert set(_statuses(task_ids)) == {"completed"}
    assert job_summary(conn)["completed_without_exactly_one_grade"] == 0


def test_a_batch_grade_the_essay_talked_up_goes_to_review_like_a_synchronous_one(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_RECHECK", "extreme")  # the default (the suite turns it off)
    simulator.config.gullible = 1.0  # a model that obeys the essay's request for a score
    (task_id,) = [start_grading_job(submit_essay(ATTACKED), mode="batch")]
    asyncio.run(grade_pending_batch())
    assert asyncio.run(grade_pending_batch())["collected"][0]["completed"] == 1
    grade = check_grading_status(task_id).grade
    assert grade.total_score == grade.max_score  # stored as the model gave it ...
    assert grade.review_state == "needs_review"  # ... and sent to a person, with the recheck
    (reason,) = [r for r in grade.review_reasons if r["reason"] == "regrade_differs"]
    assert reason["detail"]["regrade_total"] < grade.max_score
    # one batch line and one synchronous recheck; the grade's cost counts both
    assert len(simulator.requests) == 2 and grade.model_attempts == 2
