"""Leases, the reaper, fencing of late workers, cancellation and pruning, against real
PostgreSQL (and real Prefect where a flow runs)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace

import psycopg
import pytest

from essay_grader import (
    cancel_grading_job,
    check_grading_status,
    start_grading_job,
    submit_essay,
)
from flows.grading import grade_pending, grade_submission
from grader.errors import GraderError, LeaseLostError, NotFoundError
from grader.grading.grade import CriterionScore, Grade
from grader.settings import Settings
from grader.store.connections import open_async_pool
from grader.store.jobs import (
    claim_job,
    complete_job,
    fail_job,
    load_submission,
    reap_expired_leases,
    renew_lease,
)
from model_simulator import LLMSimulator
from tests.support.cli import run_main

ESSAY = "Museums should be free for students.\n\nArt belongs to everyone who wants to learn."


def _settings(worker: str = "test-worker", lease: int = 30) -> Settings:
    return replace(Settings.from_env(), worker_id=worker, lease_seconds=lease)


def _grade() -> Grade:
    return Grade(
        criteria=(
            CriterionScore(key="thesis", name="Thesis", score=7, max_points=10, justification="ok"),
        ),
        feedback="ok",
        model="simulated:test",
        prompt_tokens=1,
        completion_tokens=1,
        model_attempts=1,
    )


def _expire(conn: psycopg.Connection, task_id: uuid.UUID) -> None:
    conn.execute(
        "UPDATE grader.background_tasks SET lease_expires_at = now() - interval '1 second' "
        "WHERE task_id = %s",
        (task_id,),
    )


def _run(coro):
    return asyncio.run(coro)


async def _with_pool(fn):
    async with open_async_pool(Settings.from_env(), max_size=2) as pool:
        return await fn(pool)


def test_reaper_requeues_an_expired_job_then_fails_it_after_max_attempts(
    conn: psycopg.Connection,
) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))
    settings = _settings()

    async def claim_expire_reap(pool):
        claimed = await claim_job(pool, task_id, settings)
        _expire(conn, task_id)
        return claimed, await reap_expired_leases(pool, max_attempts=2)

    job, counts = _run(_with_pool(claim_expire_reap))
    assert job.attempt == 1 and counts == {"requeued": 1, "failed": 0}
    status = check_grading_status(task_id)
    assert status.status == "pending" and status.completed_at is None
    assert "worker test-worker lost; lease expired, retrying" in status.error_message

    job, counts = _run(_with_pool(claim_expire_reap))
    assert job.attempt == 2 and counts == {"requeued": 0, "failed": 1}
    status = check_grading_status(task_id)
    assert status.status == "failed"
    assert status.error_message == "worker lost; lease expired after 2 attempts"
    assert status.completed_at is not None


def test_reaper_leaves_live_leases_alone(conn: psycopg.Connection) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))

    async def claim_and_reap(pool):
        await claim_job(pool, task_id, _settings())
        return await reap_expired_leases(pool, max_attempts=3)

    assert _run(_with_pool(claim_and_reap)) == {"requeued": 0, "failed": 0}
    assert check_grading_status(task_id).status == "processing"


def test_late_worker_can_neither_complete_nor_fail_a_job_taken_over(
    conn: psycopg.Connection,
) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))

    async def scenario(pool):
        late = await claim_job(pool, task_id, _settings("worker-a"))
        _expire(conn, task_id)
        await reap_expired_leases(pool, max_attempts=3)
        current = await claim_job(pool, task_id, _settings("worker-b"))
        with pytest.raises(LeaseLostError):
            await complete_job(pool, late, _grade())
        assert await fail_job(pool, late, "late failure") is False
        assert await renew_lease(pool, late, 30) is False
        with pytest.raises(LeaseLostError):
            await load_submission(pool, late)
        await complete_job(pool, current, _grade())
        with pytest.raises(LeaseLostError):  # and nothing twice, even for the owner
            await complete_job(pool, current, _grade())

    _run(_with_pool(scenario))
    status = check_grading_status(task_id)
    assert status.status == "completed" and status.attempts == 2
    grades = conn.execute("SELECT count(*) AS n FROM grader.grades").fetchone()["n"]
    assert grades == 1
    worker = conn.execute(
        "SELECT worker_id FROM grader.background_tasks WHERE task_id = %s", (task_id,)
    ).fetchone()["worker_id"]
    assert worker == "worker-b"


def test_heartbeat_keeps_a_slow_call_s_lease_alive(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5 s lease and a 12 s model call: without renewal the reaper would take the job."""
    monkeypatch.setenv("GRADER_LEASE_SECONDS", "5")
    monkeypatch.setenv("GRADER_REQUEST_TIMEOUT", "30")
    simulator.config.latency_ms = 12_000
    task_id = start_grading_job(submit_essay(ESSAY))

    async def grade_while_reaping():
        flow = asyncio.ensure_future(grade_submission(task_id, return_state=True))
        reaped = {"requeued": 0, "failed": 0}
        async with open_async_pool(Settings.from_env(), max_size=1) as pool:
            while not flow.done():
                counts = await reap_expired_leases(pool, max_attempts=3)
                reaped = {k: reaped[k] + counts[k] for k in reaped}
                await asyncio.sleep(0.5)
        await flow
        return reaped

    assert _run(grade_while_reaping()) == {"requeued": 0, "failed": 0}
    status = check_grading_status(task_id)
    assert status.status == "completed" and status.attempts == 1
    assert len(simulator.requests) == 1


def test_cancel_pending_job_at_once(conn: psycopg.Connection, simulator: LLMSimulator) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))
    status = cancel_grading_job(task_id)
    assert status.status == "cancelled" and status.completed_at is not None
    _run(grade_pending(limit=10))
    assert check_grading_status(task_id).status == "cancelled"
    assert simulator.requests == []
    # a cancelled job does not block asking again
    assert start_grading_job(status.submission_id) != task_id


def test_cancel_processing_job_stops_it_and_writes_no_grade(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_LEASE_SECONDS", "6")  # heartbeat every 2 s
    monkeypatch.setenv("GRADER_REQUEST_TIMEOUT", "60")
    simulator.config.latency_ms = 30_000
    task_id = start_grading_job(submit_essay(ESSAY))

    async def grade_then_cancel():
        flow = asyncio.ensure_future(grade_submission(task_id, return_state=True))
        while not simulator.requests:  # the model call is under way
            await asyncio.sleep(0.05)
        await asyncio.to_thread(cancel_grading_job, task_id)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await flow
        return loop.time() - started

    stopped_after = _run(grade_then_cancel())
    assert stopped_after < 20, "the worker kept waiting on the model after the cancellation"
    status = check_grading_status(task_id)
    assert status.status == "cancelled" and status.grade is None
    assert conn.execute("SELECT count(*) AS n FROM grader.grades").fetchone()["n"] == 0


def test_cancel_finished_or_unknown_job_is_refused_clearly(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    task_id = start_grading_job(submit_essay(ESSAY))
    _run(grade_submission(task_id, return_state=True))
    with pytest.raises(GraderError, match="is already completed; left as it is"):
        cancel_grading_job(task_id)
    assert check_grading_status(task_id).status == "completed"
    with pytest.raises(NotFoundError):
        cancel_grading_job(uuid.uuid4())
    done = run_main("cancel", str(task_id))
    assert done.returncode == 1 and "already completed" in done.stderr
    assert "Traceback" not in done.stderr


def test_crashed_flow_run_hands_its_job_back_at_once(
    conn: psycopg.Connection, simulator: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_crashed: a run that dies in a way Prefect sees releases its job without waiting."""
    monkeypatch.setenv("GRADER_REQUEST_TIMEOUT", "60")
    simulator.config.latency_ms = 30_000
    task_id = start_grading_job(submit_essay(ESSAY))

    async def grade_then_crash():
        flow = asyncio.ensure_future(grade_submission(task_id, return_state=True))
        while not simulator.requests:
            await asyncio.sleep(0.05)
        flow.cancel()  # Prefect reports the run Crashed
        return await asyncio.gather(flow, return_exceptions=True)

    _run(grade_then_crash())
    status = check_grading_status(task_id)
    assert status.status == "pending", status
    assert "crashed" in status.error_message


def test_prune_deletes_old_finished_jobs_and_keeps_grades_unless_asked(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    done_ids = [start_grading_job(submit_essay(f"{ESSAY} {i}")) for i in range(5)]
    _run(grade_pending(limit=10))
    live = start_grading_job(submit_essay(ESSAY + " still pending"))
    conn.execute(
        "UPDATE grader.background_tasks SET created_at = created_at - interval '40 days', "
        "completed_at = completed_at - interval '40 days' WHERE task_id = ANY(%s)",
        (done_ids[:3],),
    )
    pruned = json.loads(run_main("prune", "--older-than", "30", "--json").stdout)
    assert pruned == {"jobs": 3, "grades": 0}
    remaining = {r["task_id"] for r in conn.execute("SELECT task_id FROM grader.background_tasks")}
    assert remaining == {*done_ids[3:], live}
    orphans = conn.execute(
        "SELECT count(*) AS n FROM grader.grades WHERE task_id IS NULL"
    ).fetchone()["n"]
    assert orphans == 3  # the grades of pruned jobs are kept
    conn.execute(
        "UPDATE grader.background_tasks SET completed_at = completed_at - interval '40 days' "
        "WHERE task_id = %s",
        (done_ids[3],),
    )
    pruned = json.loads(run_main("prune", "--older-than", "30", "--with-grades", "--json").stdout)
    assert pruned == {"jobs": 1, "grades": 1}
    assert conn.execute("SELECT count(*) AS n FROM grader.grades").fetchone()["n"] == 4


def test_the_crash_hook_runs_as_a_worker_calls_it(
    conn: psycopg.Connection, simulator: LLMSimulator
) -> None:
    """When a run's process dies, the worker's runner (not the flow engine) runs the on_crashed
    hooks, passing flow=, flow_run= and state= by name: the hook hands the run's job back at once
    rather than after its lease (it once took other names, failed with a TypeError in the
    worker's log, and the job waited for its lease)."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._hook_runner import _run_hooks  # what the runner calls on a crash
    from prefect.states import Crashed

    from tasks.grade_claimed import release_on_crash

    task_id = start_grading_job(submit_essay(ESSAY))
    run = FlowRun(
        id=uuid.uuid4(),
        name="crashed-run",
        flow_id=uuid.uuid4(),
        parameters={"task_id": str(task_id)},
    )
    settings = Settings.from_env()
    # the worker id a flow run claims with (grader.context.open_run_context)
    owner = replace(settings, worker_id=f"{settings.worker_id}:{str(run.id)[:8]}")

    async def claim_then_crash() -> None:
        async with open_async_pool(owner) as pool:
            assert await claim_job(pool, task_id, owner) is not None
        await _run_hooks([release_on_crash], run, grade_submission, Crashed(message="killed"))

    _run(claim_then_crash())
    status = check_grading_status(task_id)
    assert status.status == "pending", status
    assert "crashed" in status.error_message
