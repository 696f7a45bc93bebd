"""Human-scored sets and evaluation runs in the database: a set's rows written with COPY, the runs,
their jobs, progress and results.

A set is imported in one transaction, whatever its size: its checked rows (grader/evaluation.py
reads the file) go in with COPY a chunk at a time, and a bad row found after thousands of good ones
leaves nothing. An evaluation run creates one pending grading job per essay of the set, tagged
with the run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from grader.errors import InvalidInputError, NotFoundError
from grader.evaluation import TOTAL, ScoredEssay
from grader.store.jobs import save_rubric
from grader.store.monitoring import copy_csv
from grader.store.queries import query

if TYPE_CHECKING:
    from grader.grading.rubric import Rubric

CHUNK_ROWS = 2000  # rows per COPY round: memory stays bounded whatever the file's size


def import_set(
    conn: psycopg.Connection,
    essays: Iterable[ScoredEssay],
    rubric: Rubric,
    name: str,
    source: str,
) -> int:
    """Imports a human-scored set in one transaction: every row or none (an error raised while
    `essays` is read rolls back what was written). `source`: the file's name. How many essays."""
    with conn.transaction():
        rubric_id = save_rubric(conn, rubric)
        if conn.execute(query("evaluation_set_by_name"), {"name": name}).fetchone():
            raise InvalidInputError(f"a set named {name!r} exists: choose another --name")
        set_id = conn.execute(
            query("insert_evaluation_set"),
            {"name": name, "rubric_id": rubric_id, "items": 0, "source": source},
        ).fetchone()["set_id"]
        count = 0
        submissions: list[tuple] = []
        items: list[tuple] = []
        for scored in essays:
            submission_id = uuid.uuid4()
            sha = hashlib.sha256(scored.essay.encode("utf-8")).hexdigest()
            submissions.append((submission_id, scored.essay, sha, rubric_id))
            items.append(
                (
                    set_id,
                    scored.item_id,
                    submission_id,
                    json.dumps(scored.human),
                    json.dumps(scored.second) if scored.second else None,
                )
            )
            count += 1
            if len(items) >= CHUNK_ROWS:
                _copy(conn, submissions, items)
        _copy(conn, submissions, items)
        conn.execute(query("count_evaluation_items"), {"items": count, "set_id": set_id})
    return count


def _copy(conn: psycopg.Connection, submissions: list[tuple], items: list[tuple]) -> None:
    with conn.cursor().copy(query("copy_evaluation_submissions")) as copy:
        for row in submissions:
            copy.write_row(row)
    with conn.cursor().copy(query("copy_evaluation_items")) as copy:
        for row in items:
            copy.write_row(row)
    submissions.clear()
    items.clear()


def find_set(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = conn.execute(query("evaluation_set_by_name"), {"name": name}).fetchone()
    if row is None:
        raise NotFoundError(f"no evaluation set named {name!r} (see `grader evaluate list`)")
    return row


def list_sets(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return conn.execute(query("list_evaluation_sets")).fetchall()


def reference_scores(conn: psycopg.Connection, set_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """{sha256 of each essay: its human criterion scores}: what the simulator is told when an
    evaluation runs without a real model."""
    rows = conn.execute(query("evaluation_reference_scores"), {"set_id": set_id})
    return {r["content_sha256"]: {k: v for k, v in r["human"].items() if k != TOTAL} for r in rows}


def create_run(
    conn: psycopg.Connection,
    set_row: dict[str, Any],
    label: str,
    model: str,
    settings: dict[str, Any],
    anchors: list[dict[str, Any]] | None = None,
    samples: int | None = None,
) -> dict[str, Any]:
    """The run and one pending job per essay, in one transaction (a listener hears them at
    once; grade-pending sweeps them up otherwise). With `anchors`, the jobs grade by the set's
    rubric carrying those anchor essays (a rubric of its own, stored once per content)."""
    from grader.grading.rubric import parse_rubric

    rubric_id = set_row["rubric_id"]
    if anchors:
        rubric = parse_rubric(set_row["rubric"], set_row["name"]).with_anchors(anchors)
        rubric_id = save_rubric(conn, rubric)
    with conn.transaction():
        run = conn.execute(
            query("insert_evaluation_run"),
            {
                "set_id": set_row["set_id"],
                "label": label,
                "model": model,
                "settings": Jsonb(settings),
            },
        ).fetchone()
        jobs = conn.execute(
            query("create_evaluation_jobs"),
            {
                "set_id": set_row["set_id"],
                "run_id": run["run_id"],
                "rubric_id": rubric_id,
                "samples": samples,
            },
        ).rowcount
    return {"run_id": run["run_id"], "jobs": jobs, "label": label}


def run_progress(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, int]:
    return conn.execute(query("evaluation_run_progress"), {"run_id": run_id}).fetchone()


def find_run(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """A run by its label or the start of its id; the newest if a label names several."""
    rows = conn.execute(query("evaluation_run"), {"prefix": ref.strip()}).fetchall()
    if not rows:
        raise NotFoundError(f"no evaluation run with label or id {ref[:60]!r}")
    return rows[0]


def run_results(conn: psycopg.Connection, run: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """A run's results: one CSV row per (essay, target) (streamed with COPY), and the summary
    of its jobs (counts, cost, tokens, time, models, prompt versions)."""
    params = {"set_id": run["set_id"], "run_id": run["run_id"]}
    summary = conn.execute(query("evaluation_summary"), params).fetchone()
    return copy_csv(conn, "evaluation_results", params), summary


def finish_run(conn: psycopg.Connection, run_id: uuid.UUID, metrics: dict[str, Any]) -> None:
    conn.execute(query("finish_evaluation_run"), {"run_id": run_id, "metrics": Jsonb(metrics)})
