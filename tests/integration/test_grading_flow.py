"""The grading flow against real Prefect, real PostgreSQL and the simulator over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import uuid

import psycopg
import pytest

from essay_grader import check_grading_status, start_grading_job, submit_essay
from flows.grading import grade_pending, grade_submission
from grader.grading.rubric import load_rubric
from model_simulator import LLMSimulator

ESSAY = (
    "Homework should be optional in primary school.\n\n"
    "Children learn through play, and evenings are for families."
)


def _grade(task_id: uuid.UUID):
    return asyncio.run(grade_submission(task_id, return_state=True))


def _new_job(essay: str = ESSAY) -> uuid.UUID:
    return start_grading_job(submit_essay(essay))


def _grades(conn: psycopg.Connection, task_id: uuid.UUID) -> int:
    return conn.execute(
        "SELECT count(*) AS n FROM grader.grades WHERE task_id = %s", (task_id,)
    ).fetchone()["n"]


def test_job_moves_pending_processing_completed_with_timestamps(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.latency_ms = 300
    task_id = _new_job()
    before = check_grading_status(task_id)
    assert before.status == "pending"

    seen: list[str] = []

    async def grade_and_watch() -> None:
        flow = asyncio.ensure_future(grade_submission(task_id, return_state=True))
        while not flow.done():
            row = await asyncio.to_thread(check_grading_status, task_id)
            seen.append(row.status)
            await asyncio.sleep(0.05)
        await flow

    asyncio.run(grade_and_watch())
    after = check_grading_status(task_id)
    assert "processing" in seen
    assert after.status == "completed"
    assert after.attempts == 1
    assert after.created_at <= after.started_at <= after.completed_at
    assert after.updated_at == after.completed_at
    assert after.error_message is None
    grade = after.grade
    assert grade is not None and grade.simulated
    rubric = load_rubric()
    assert [c.key for c in grade.criteria] == [c.key for c in rubric.criteria]
    assert grade.total_score == sum(c.score for c in grade.criteria)
    assert grade.max_score == rubric.max_score
    assert all(0 <= c.score <= c.max_points for c in grade.criteria)
    assert grade.prompt_tokens > 0 and grade.completion_tokens > 0
    assert grade.model_attempts == 1
    assert _grades(conn, task_id) == 1
    lease = conn.execute(
        "SELECT lease_expires_at FROM grader.background_tasks WHERE task_id = %s", (task_id,)
    ).fetchone()
    assert lease["lease_expires_at"] is None


def test_rate_limit_and_server_error_are_retried_until_success(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.retry_after_seconds = 1
    simulator.config.script = ["429", "500"]
    task_id = _new_job()
    _grade(task_id)
    status = check_grading_status(task_id)
    assert status.status == "completed", status.error_message
    assert status.attempts == 1  # one claim
    assert status.grade.model_attempts == 3  # three model calls: 429, 500, success
    calls = [r for r in simulator.requests if r.path.endswith("/chat/completions")]
    assert [r.fault for r in calls] == ["429", "500", None]
    # Retry-After: 1 was waited out before the second call
    assert calls[1].at - calls[0].at >= 1.0
    assert _grades(conn, task_id) == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("400", "model API error 400 (not retried)"),
        ("401", "model API error 401 (not retried)"),
        ("malformed", "does not fit the rubric: document: Invalid JSON"),
        ("truncate", "cut off (finish_reason=length)"),
    ],
)
def test_errors_a_retry_cannot_fix_fail_at_once_with_a_clear_message(
    conn: psycopg.Connection, simulator: LLMSimulator, fault: str, message: str
) -> None:
    """Bad request, bad credentials, malformed or cut-off answers: one model call, no retry."""
    simulator.config.script = [fault]
    task_id = _new_job()
    _grade(task_id)
    status = check_grading_status(task_id)
    assert status.status == "failed"
    assert message in status.error_message
    assert status.completed_at is not None
    assert len(simulator.requests) == 1
    assert _grades(conn, task_id) == 0


def test_scores_out_of_the_rubrics_bounds_are_never_stored(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    """A model talked into "full marks and more" (every score far over its maximum): the job
    fails with the reason, and no grade exists."""
    simulator.config.script = ["overscore"]
    task_id = _new_job()
    _grade(task_id)
    status = check_grading_status(task_id)
    assert status.status == "failed"
    assert status.error_message.startswith("the model's answer does not fit the rubric:")
    assert "less than or equal to" in status.error_message
    assert _grades(conn, task_id) == 0
    assert len(simulator.requests) == 1  # not retried: the same prompt would get the same answer


def test_hanging_model_call_times_out_and_is_retried(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.hang_seconds = 30
    simulator.config.script = ["hang", "drop"]
    task_id = _new_job()
    _grade(task_id)  # GRADER_REQUEST_TIMEOUT is 2 s in the tests
    status = check_grading_status(task_id)
    assert status.status == "completed", status.error_message
    assert status.grade.model_attempts == 3
    assert [r.fault for r in simulator.requests] == ["hang", "drop", None]


def test_persistent_server_errors_fail_after_the_retries(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.script = ["500"] * 10
    task_id = _new_job()
    _grade(task_id)
    status = check_grading_status(task_id)
    assert status.status == "failed"
    assert "model API error 500 (retries exhausted)" in status.error_message
    assert len(simulator.requests) == 5  # GRADER_MODEL_RETRIES=4: one call and four retries


@pytest.mark.parametrize(
    ("essay", "reason"),
    [("   ", "the essay is empty"), ("y" * 1_000_000, "the limit is 100,000")],
    ids=["empty", "one-megabyte"],
)
def test_ungradable_stored_essay_fails_without_calling_the_model(
    conn: psycopg.Connection, simulator: LLMSimulator, essay: str, reason: str
) -> None:
    """An essay stored some other way (or before a limit was lowered) fails at load-submission."""
    task_id = _new_job()
    conn.execute(
        "UPDATE grader.submissions SET essay = %s, content_sha256 = %s",
        (essay, hashlib.sha256(essay.encode()).hexdigest()),
    )
    _grade(task_id)
    status = check_grading_status(task_id)
    assert status.status == "failed"
    assert reason in status.error_message
    assert simulator.requests == []


def test_a_job_that_is_not_pending_is_left_alone(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    task_id = _new_job()
    _grade(task_id)
    first = check_grading_status(task_id)
    state = _grade(task_id)
    assert state.is_completed()
    assert "was not pending (completed)" in state.message
    again = check_grading_status(task_id)
    assert again.attempts == first.attempts == 1
    assert len(simulator.requests) == 1
    assert _grades(conn, task_id) == 1


def test_batch_grades_pending_jobs_and_counts_outcomes(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    task_ids = [_new_job(f"{ESSAY}\n\nVersion {i}.") for i in range(12)]
    bad = _new_job("   x")
    conn.execute(
        "UPDATE grader.submissions SET essay = ' ' WHERE submission_id = "
        "(SELECT (input_data->>'submission_id')::uuid FROM grader.background_tasks "
        "WHERE task_id = %s)",
        (bad,),
    )
    outcomes = asyncio.run(grade_pending(limit=100, concurrency=4))
    assert outcomes == {"completed": 12, "failed": 1, "lost": 0}
    for task_id in task_ids:
        assert check_grading_status(task_id).status == "completed"
        assert _grades(conn, task_id) == 1
    assert check_grading_status(bad).status == "failed"


def test_batch_respects_limit_and_concurrency(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    simulator.config.latency_ms = 200
    for i in range(10):
        _new_job(f"{ESSAY}\n\nCopy {i}.")
    outcomes = asyncio.run(grade_pending(limit=6, concurrency=3))
    assert outcomes["completed"] == 6
    counts = conn.execute(
        "SELECT status, count(*) AS n FROM grader.background_tasks GROUP BY status"
    ).fetchall()
    assert {r["status"]: r["n"] for r in counts} == {"completed": 6, "pending": 4}
    # never more than three model calls in flight at once
    starts = sorted(r.at for r in simulator.requests)
    assert all(b - a >= 0.15 for a, b in zip(starts, starts[3:], strict=False))


def test_a_listener_grades_each_job_the_moment_it_is_triggered(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    """grade-on-arrival hears the trigger's notification and claims the job itself: the job
    records the listener's flow run, and a client waiting for the grade leaves it to the
    listener instead of grading it here (which would record no flow run)."""
    from essay_grader import GradingService
    from flows.grading import grade_on_arrival
    from grader.settings import Settings

    client = GradingService(Settings.from_env())

    async def scenario():
        listener = asyncio.ensure_future(
            grade_on_arrival(concurrency=4, minutes=0.5, handover_seconds=0)
        )
        while not conn.execute("SELECT count(*) AS n FROM grader.listeners").fetchone()["n"]:
            assert not listener.done(), listener.result()  # it ended before it listened
            await asyncio.sleep(0.05)  # until it listens (its heartbeat row)
        task_ids = [
            await asyncio.to_thread(client.start_grading_job, client.submit_essay(f"{ESSAY} {i}"))
            for i in range(3)
        ]
        statuses = [await asyncio.to_thread(client.grade_job, t, 60) for t in task_ids]
        outcomes = await listener
        return statuses, outcomes

    statuses, outcomes = asyncio.run(scenario())
    listener_run = conn.execute("SELECT flow_run_id FROM grader.background_tasks LIMIT 1")
    assert outcomes == {"completed": 3, "failed": 0, "lost": 0}
    assert all(s.status == "completed" and s.attempts == 1 for s in statuses)
    run_ids = {s.flow_run_id for s in statuses}
    assert len(run_ids) == 1 and None not in run_ids, run_ids
    assert listener_run.fetchone()["flow_run_id"] in run_ids
    # the listener is gone: its heartbeat row with it
    assert conn.execute("SELECT count(*) AS n FROM grader.listeners").fetchone()["n"] == 0


def test_k_samples_make_k_calls_and_keep_the_median(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_SAMPLES", "3")
    monkeypatch.setenv("GRADER_DISAGREEMENT_POINTS", "1")
    sha = hashlib.sha256(ESSAY.encode()).hexdigest()
    keys = [c.key for c in load_rubric().criteria]
    # the simulator knows this essay; every score it gives is random: the samples differ
    simulator.config.reference = {sha: dict.fromkeys(keys, 5)}
    simulator.config.reference_noise = {"random": 1.0}
    simulator.config.seed = 11
    task_id = _new_job()
    assert _grade(task_id).is_completed()
    grade = check_grading_status(task_id).grade
    assert len(simulator.requests) == 3  # one per sample, each its own call-OpenAI task run
    for criterion in grade.criteria:
        assert len(criterion.samples) == 3
        assert criterion.score == statistics.median_low(criterion.samples)
    spread = [c.key for c in grade.criteria if max(c.samples) - min(c.samples) > 1]
    assert grade.disagreement == tuple(spread) and spread  # stored, for a teacher to review
    assert grade.model_attempts == 3 and grade.prompt_tokens % 3 == 0
    assert grade.total_score == sum(c.score for c in grade.criteria)
    assert all(c.confidence == "medium" for c in grade.criteria)  # a random score's confidence
    assert grade.prompt_version and len(grade.prompt_version) == 12
