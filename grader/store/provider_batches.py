"""Batch grading's store side: the intent recorded before anything reaches the provider, the
jobs a batch holds, and what became of them. The provider calls are in flows/batch.py.

A job in a batch is `processing`, held by worker `batch:<ref>` under a lease that covers the
provider's 24-hour window plus an hour (the reaper leaves it alone while the batch can still
answer; a batch nobody collects is reaped like a dead worker's job). Each line's custom_id is
`<task id>:<attempt>`: a result is stored only for the attempt that sent it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from grader.store.jobs import ClaimedJob, claimed_job
from grader.store.queries import query

BATCH_LEASE_SECONDS = 25 * 3600


def claim(conn: psycopg.Connection, limit: int, model: str) -> tuple[UUID | None, list[ClaimedJob]]:
    """The intent and the jobs it holds, in one transaction; (None, []) when nothing waits."""
    with conn.transaction():
        ref = conn.execute(query("open_provider_batch"), {"model": model}).fetchone()["batch_ref"]
        rows = conn.execute(
            query("claim_pending_jobs"),
            {
                "limit": limit,
                "batch_ref": ref,
                "worker_id": f"batch:{ref}",
                "lease_seconds": BATCH_LEASE_SECONDS,
                "flow_run_id": None,
                "evaluation_run_id": None,
                "mode": "batch",
            },
        ).fetchall()
        conn.execute(query("count_provider_batch_jobs"), {"batch_ref": ref, "jobs": len(rows)})
        if not rows:
            conn.execute(query("drop_empty_provider_batch"), {"batch_ref": ref})
            return None, []
    return ref, [claimed_job(row) for row in rows]


def lock_runs(conn: psycopg.Connection) -> bool:
    """One batch run at a time: True when this connection now holds the lock (until it closes,
    which a killed process's connection does too)."""
    return conn.execute(query("lock_batch_runs")).fetchone()["locked"]


def open_batches(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return conn.execute(query("open_provider_batches")).fetchall()


def jobs(conn: psycopg.Connection, ref: UUID) -> list[ClaimedJob]:
    rows = conn.execute(query("provider_batch_jobs"), {"batch_ref": ref}).fetchall()
    return [claimed_job(row) for row in rows]


def submitted(conn: psycopg.Connection, ref: UUID, provider_batch_id: str) -> None:
    conn.execute(
        query("provider_batch_submitted"),
        {"batch_ref": ref, "provider_batch_id": provider_batch_id},
    )


def collected(conn: psycopg.Connection, ref: UUID, outcome: dict[str, Any]) -> None:
    conn.execute(query("provider_batch_collected"), {"batch_ref": ref, "outcome": Jsonb(outcome)})


def listing(conn: psycopg.Connection, ref: str | None = None, limit: int = 20) -> list[dict]:
    """Batches, newest first (or the one whose reference starts with, or provider id is,
    `ref`), with their jobs' statuses now."""
    return conn.execute(query("list_provider_batches"), {"ref": ref, "limit": limit}).fetchall()


def custom_id(job: ClaimedJob) -> str:
    return f"{job.task_id}:{job.attempt}"
