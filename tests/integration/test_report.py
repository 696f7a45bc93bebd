"""The weekly metrics report, on synthetic jobs with answers worked out by hand."""

from __future__ import annotations

import html
import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from grader.grading.pricing import DEFAULT_PRICES
from grader.grading.rubric import load_rubric
from grader.store.jobs import create_submission, save_rubric
from reports.render import CHARTS, write_report
from reports.weekly import build_report, make_window
from tests.support.cli import run_main

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # a Monday


class Jobs:
    """Inserts jobs with chosen timestamps, statuses, grades and errors."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.rubric_id = save_rubric(conn, load_rubric())
        self.submission_id = create_submission(conn, "An essay.", None, self.rubric_id)

    def add(
        self,
        created: datetime,
        wait: float | None = None,
        work: float | None = None,
        status: str = "completed",
        attempts: int = 1,
        error: str | None = None,
        model: str = "gpt-4o-mini",
        tokens: tuple[int, int] = (1000, 100),
        scores: dict[str, int] | None = None,
    ) -> uuid.UUID:
        started = created + timedelta(seconds=wait) if wait is not None else None
        completed = started + timedelta(seconds=work) if work is not None else None
        if status in ("failed", "cancelled") and completed is None:
            completed = created + timedelta(seconds=1)
        task_id = self.conn.execute(
            "INSERT INTO grader.background_tasks (status, input_data, attempts, created_at, "
            "started_at, completed_at, error_message, lease_expires_at, worker_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING task_id",
            (
                status,
                Jsonb({"submission_id": str(self.submission_id)}),
                attempts,
                created,
                started,
                completed,
                error,
                created + timedelta(hours=1) if status == "processing" else None,
                "w" if status == "processing" else None,
            ),
        ).fetchone()["task_id"]
        if status == "completed":
            scores = scores or {"thesis": 5}
            criteria = [
                {"key": k, "name": k, "score": v, "max_points": 10, "justification": ""}
                for k, v in scores.items()
            ]
            self.conn.execute(
                "INSERT INTO grader.grades (task_id, submission_id, rubric_id, total_score, "
                "max_score, criteria, feedback, model, prompt_tokens, completion_tokens) "
                "VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s, %s)",
                (
                    task_id,
                    self.submission_id,
                    self.rubric_id,
                    sum(scores.values()),
                    10 * len(scores),
                    Jsonb(criteria),
                    model,
                    *tokens,
                ),
            )
        return task_id


def _week() -> object:
    return make_window("2026-11-02", "2026-11-09", "UTC")


def _row(frame, **where) -> dict:
    for key, value in where.items():
        frame = frame[frame[key] == value]
    assert len(frame) == 1, frame
    return frame.iloc[0].to_dict()


def test_duration_percentiles_match_hand_computed_values(conn: psycopg.Connection) -> None:
    jobs = Jobs(conn)
    # total durations 11, 22, 33, 44, 105 s: queue waits 1..5 s plus work 10, 20, 30, 40, 100 s
    for i, work in enumerate([10, 20, 30, 40, 100]):
        jobs.add(
            T0 + timedelta(hours=i), wait=i + 1, work=work, scores={"thesis": [5, 7, 9, 7, 7][i]}
        )
    jobs.add(T0, wait=2, status="processing")  # still running: no processing or total time
    jobs.add(T0 - timedelta(days=1), wait=1, work=1)  # outside the window

    report = build_report(conn, _week(), DEFAULT_PRICES)
    total = _row(report.tables["durations"], measure="total")
    # linear interpolation (percentile_cont): position (n-1)q over 11, 22, 33, 44, 105
    assert total["count"] == 5
    assert total["mean"] == pytest.approx(43.0)
    assert total["min"] == 11 and total["max"] == 105
    assert total["p50"] == pytest.approx(33.0)
    assert total["p90"] == pytest.approx(44 + 0.6 * (105 - 44))  # 80.6
    assert total["p95"] == pytest.approx(44 + 0.8 * (105 - 44))  # 92.8
    assert total["p99"] == pytest.approx(44 + 0.96 * (105 - 44))  # 102.56
    wait = _row(report.tables["durations"], measure="queue_wait")
    assert wait["count"] == 6  # the running job has waited 2 s: it counts here
    assert wait["p50"] == pytest.approx(2.5)  # 1, 2, 2, 3, 4, 5
    processing = _row(report.tables["durations"], measure="processing")
    assert processing["count"] == 5 and processing["p50"] == pytest.approx(30)

    s = report.summary
    assert (s["jobs"], s["completed"], s["still_running"]) == (6, 5, 1)
    status = _row(report.tables["jobs_by_status"], task_type="grading")
    assert status["processing"] == 1 and status["completed"] == 5

    scores = _row(report.tables["scores_by_criterion"], criterion="thesis")
    assert scores["count"] == 5 and scores["p50"] == 7 and scores["min"] == 5
    assert scores["mean"] == pytest.approx(7.0)


def test_failures_errors_tokens_and_cost(conn: psycopg.Connection) -> None:
    jobs = Jobs(conn)
    jobs.add(T0, wait=1, work=2, model="gpt-4o-mini", tokens=(1_000_000, 1_000_000))
    jobs.add(T0, wait=1, work=2, model="simulated:gpt-4o-mini", tokens=(500, 50))
    for _ in range(2):
        jobs.add(
            T0,
            status="failed",
            attempts=3,
            error=f"task {uuid.uuid4()} failed: model API error 500 after 5 calls",
        )
    long_unicode = "échec 🚫 | " + "x" * 5000
    jobs.add(T0, status="failed", error=long_unicode)
    jobs.add(T0, status="cancelled", error="cancelled by request")

    report = build_report(conn, _week(), DEFAULT_PRICES)
    assert report.summary["failure_rate"] == pytest.approx(3 / 5)  # of completed + failed
    status = _row(report.tables["jobs_by_status"], task_type="grading")
    assert status["failure_rate"] == pytest.approx(3 / 6)  # of every finished job
    errors = report.tables["top_errors"]
    assert errors.iloc[0].to_dict() == {
        "error": "task <id> failed: model API error <n> after <n> calls",
        "jobs": 2,
    }
    assert len(errors.iloc[1]["error"]) == 300 and errors.iloc[1]["error"].startswith("échec 🚫")
    tokens = report.tables["tokens_by_model"].set_index("model")
    assert tokens.loc["gpt-4o-mini", "cost_usd"] == pytest.approx(0.15 + 0.60)
    assert tokens.loc["simulated:gpt-4o-mini", "cost_usd"] == 0
    attempts = report.tables["attempts"].set_index("attempts")["jobs"].to_dict()
    assert attempts == {1: 4, 3: 2}


def test_days_follow_the_report_time_zone(conn: psycopg.Connection) -> None:
    jobs = Jobs(conn)
    late = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)  # Tokyo: 3 November, 08:30
    jobs.add(late, wait=1, work=1)

    utc = build_report(conn, make_window("2026-11-02", "2026-11-03", "UTC"), DEFAULT_PRICES)
    assert list(utc.tables["throughput_daily"]["day"]) == ["2026-11-02"]
    tokyo_next = build_report(
        conn, make_window("2026-11-03", "2026-11-04", "Asia/Tokyo"), DEFAULT_PRICES
    )
    assert list(tokyo_next.tables["throughput_daily"]["day"]) == ["2026-11-03"]
    tokyo_same = build_report(
        conn, make_window("2026-11-02", "2026-11-03", "Asia/Tokyo"), DEFAULT_PRICES
    )
    assert tokyo_same.summary["jobs"] == 0
    hours = tokyo_next.tables["throughput_hourly"]
    assert list(hours["hour"]) == ["2026-11-03 08:00"]


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", path
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


@pytest.mark.parametrize("empty", [False, True], ids=["with-jobs", "empty-window"])
def test_render_writes_tables_html_and_valid_charts(
    conn: psycopg.Connection, tmp_path: Path, empty: bool
) -> None:
    if not empty:
        jobs = Jobs(conn)
        for i in range(30):
            jobs.add(T0 + timedelta(hours=5 * i), wait=1, work=10 + i)
        jobs.add(T0, status="failed", error="a <b>bold</b> & odd error")
    report = build_report(conn, _week(), DEFAULT_PRICES)
    folder = write_report(report, tmp_path)
    assert folder.name == "2026-11-02_2026-11-08"
    page = (folder / "report.html").read_text()
    for chart in CHARTS:
        assert f'src="{chart}"' in page
        _assert_png(folder / chart)
    for name in report.tables:
        assert (folder / f"{name}.csv").exists()
    markdown = (folder / "report.md").read_text()
    if empty:
        assert "There were no jobs in this window (Mon 2 Nov 2026" in markdown
        assert "There were no jobs in this window (Mon 2 Nov 2026" in page
    else:
        assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
        assert re.search(r"jobs: 31 \(30 completed, 1 failed", markdown)
        assert math.isclose(report.summary["failure_rate"], 1 / 31, abs_tol=1e-4)


def _simulated_week(conn: psycopg.Connection) -> None:
    """30 graded essays (totals 10/20 ... 20/20, from the simulator), one failure, and no
    priced model: what the demo leaves behind."""
    jobs = Jobs(conn)
    for i in range(30):
        jobs.add(
            T0 + timedelta(hours=5 * i),
            wait=1,
            work=10 + i,
            model="simulated:gpt-4o-mini",
            scores={"thesis": 5 + i % 6, "evidence": 10},
        )
    jobs.add(T0, status="failed", error="model API error 500 after 5 calls")


def test_report_reads_for_people(conn: psycopg.Connection, tmp_path: Path) -> None:
    _simulated_week(conn)
    report = build_report(conn, _week(), DEFAULT_PRICES)
    assert (
        report.summary["window"] == "2026-11-02T00:00:00+00:00 to 2026-11-09T00:00:00+00:00 (UTC)"
    )
    totals = report.tables["total_scores"]
    assert totals["grades"].sum() == 30 and set(totals["max_score"]) == {20}
    assert dict(zip(totals["total_score"], totals["grades"], strict=True)) == {
        15 + k: 5 for k in range(6)
    }
    folder = write_report(report, tmp_path)
    page = (folder / "report.html").read_text()
    markdown = (folder / "report.md").read_text()
    for text in (page, markdown):
        # simulated grades are called that at the top, before anything else is said
        head = text[: text.index("Charts")]
        assert (
            "SIMULATED: 30 of the 30 grades in this window came from the built-in model "
            "simulator" in head
        )
        # the one paragraph a head of department reads; 95% of 11..40 s is within 38.55 s
        assert (
            "30 essays graded in this window (Mon 2 Nov 2026 to Sun 8 Nov 2026 (UTC)), 1 failed "
            "(3.2% of finished jobs); 95% were graded within 38.5 s of the request (half within "
            "25.5 s). Model cost: $0.00." in head
        )
        # internal names, raw floats and timestamps stay in the CSV files
        for internal in ("failure_rate", "p95_total_seconds", "queue_wait", "cost_usd", ".000"):
            assert internal not in text, internal
        assert "+00:00" not in text and "$0.0 " not in text
        assert "waiting for a worker" in text and "95th percentile (s)" in text
    assert "<td class=num>20</td>" in page  # a whole score is 20, not 20.000
    for title, caption in CHARTS.values():
        assert title != caption and f"<figcaption>{html.escape(caption)}</figcaption>" in page
    # CSV keeps machine-friendly names and raw numbers
    daily_csv = (folder / "throughput_daily.csv").read_text().splitlines()
    assert daily_csv[0] == "day,created,completed,failed,failure_rate,p95_total_seconds"


def test_report_of_real_grades_has_no_simulated_banner(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    Jobs(conn).add(T0, wait=1, work=3, model="gpt-4o-mini", tokens=(20_000, 1_000))
    report = build_report(conn, _week(), DEFAULT_PRICES)
    folder = write_report(report, tmp_path)
    page = (folder / "report.html").read_text()
    assert "SIMULATED" not in page and 'class="simulated"' not in page
    # 20,000 prompt tokens at $0.15/M and 1,000 completion tokens at $0.60/M
    assert "Model cost: $0.0036." in page
    assert '<p class="empty">None in this window.</p>' in page  # no failures: said, not blank


def test_grader_report_command(conn: psycopg.Connection, tmp_path: Path) -> None:
    Jobs(conn).add(T0, wait=1, work=3)
    done = run_main(
        "report", "--since", "2026-11-02", "--until", "2026-11-09", "--out", str(tmp_path), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["jobs"] == 1 and result["p50_total_seconds"] == 4.0
    assert "report.html" in result["files"] and "durations.csv" in result["files"]
    bad = run_main("report", "--since", "last tuesday")
    assert bad.returncode == 1 and "--since must be a date" in bad.stderr
    bad_tz = run_main("report", "--tz", "Mars/Olympus")
    assert bad_tz.returncode == 1 and "unknown time zone" in bad_tz.stderr


def test_weekly_flow_writes_the_folder_and_publishes_artifacts(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.weekly_report import ARTIFACT_TABLES, weekly_metrics_report

    Jobs(conn).add(T0, wait=1, work=3)
    result = weekly_metrics_report(since="2026-11-02", until="2026-11-09", out=str(tmp_path))
    assert result["jobs"] == 1 and Path(result["folder"], "report.html").exists()

    keys = ["weekly-metrics-summary", *(f"weekly-{t.replace('_', '-')}" for t in ARTIFACT_TABLES)]

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
            )

    artifacts = asyncio.run(read())
    assert {a.key for a in artifacts} == set(keys)
    summary = next(a for a in artifacts if a.key == "weekly-metrics-summary")
    assert "jobs: 1 (1 completed" in summary.data
