"""The weekly metrics report: what ran, what failed and why, how long grading takes.

PostgreSQL does what shrinks the data (error grouping, token sums, score counts); the per-job
rows the duration statistics need are streamed with COPY as narrow CSV (times as epoch seconds)
and summarised with pandas. Percentiles interpolate linearly, as percentile_cont does. Stored
times are UTC; days and hours are counted in the report's time zone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import psycopg

from grader.errors import ConfigError
from grader.grading.grade import SIMULATED_MODEL_PREFIX
from grader.grading.pricing import Prices, call_cost, load_prices
from grader.settings import Settings
from grader.store.connections import connect
from grader.store.reports import report_jobs_csv, report_tables
from reports.monitoring import frame
from reports.render import write_report

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
STAT_COLUMNS = ["count", "mean", "min", "p50", "p90", "p95", "p99", "max"]
MEASURES = {
    "queue_wait": ("created", "started"),
    "processing": ("started", "completed"),
    "total": ("created", "completed"),
}


@dataclass(frozen=True)
class Window:
    since: datetime  # aware
    until: datetime  # aware, exclusive
    tz: ZoneInfo

    @property
    def label(self) -> str:
        last = (self.until - timedelta(microseconds=1)).astimezone(self.tz)
        return f"{self.since.astimezone(self.tz):%Y-%m-%d}_{last:%Y-%m-%d}"

    def describe(self) -> str:
        """The window in words: whole days as "Mon 2 Nov 2026 to Sun 8 Nov 2026 (UTC)",
        otherwise to the minute."""
        since, until = self.since.astimezone(self.tz), self.until.astimezone(self.tz)
        if since.time() == time() and until.time() == time():
            last = until - timedelta(days=1)
            return f"{since:%a %-d %b %Y} to {last:%a %-d %b %Y} ({self.tz.key})"
        return f"{since:%a %-d %b %Y %H:%M} to {until:%a %-d %b %Y %H:%M} ({self.tz.key})"


def make_window(
    since: str | None, until: str | None, tz: str = "UTC", now: datetime | None = None
) -> Window:
    """--since/--until as dates (midnight in the report's time zone) or ISO date-times;
    the default is the 7 days up to now."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {tz!r}") from None

    def parse(text: str, what: str) -> datetime:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"--{what} must be a date or date-time, got {text!r}") from None
        if len(text) <= 10:  # a bare date: midnight there
            value = datetime.combine(value.date(), time(), zone)
        return value if value.tzinfo else value.replace(tzinfo=zone)

    end = parse(until, "until") if until else (now or datetime.now(zone))
    start = parse(since, "since") if since else end - timedelta(days=7)
    if start >= end:
        raise ConfigError("--since must be before --until")
    return Window(start, end, zone)


@dataclass
class Report:
    window: Window
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    # per-job durations (seconds) of completed jobs, and daily p95, for the charts
    total_seconds: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))


def load_jobs(conn: psycopg.Connection, window: Window) -> pd.DataFrame:
    """The window's jobs as a narrow frame, streamed with COPY."""
    return pd.read_csv(
        io.BytesIO(report_jobs_csv(conn, window.since, window.until)),
        dtype={
            "task_type": "category",
            "status": "category",
            "attempts": "int32",
            "created": "float64",
            "started": "float64",
            "completed": "float64",
            "model": "category",
        },
    )


def describe(values: pd.Series) -> dict[str, float]:
    values = values.dropna()
    if values.empty:
        return {"count": 0, **{c: float("nan") for c in STAT_COLUMNS[1:]}}
    q = values.quantile(list(QUANTILES.values())).to_numpy()
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "min": float(values.min()),
        **{name: float(v) for name, v in zip(QUANTILES, q, strict=True)},
        "max": float(values.max()),
    }


def _durations(jobs: pd.DataFrame) -> pd.DataFrame:
    """Seconds per measure; a job still running has no processing or total time (NaN), not 0."""
    return pd.DataFrame({m: jobs[end] - jobs[start] for m, (start, end) in MEASURES.items()})


def duration_stats(jobs: pd.DataFrame, by: str | None) -> pd.DataFrame:
    durations = _durations(jobs)
    rows = []
    groups = [("all", durations)] if by is None else durations.groupby(jobs[by], observed=True)
    for key, group in groups:
        for measure in MEASURES:
            rows.append({by or "scope": key, "measure": measure, **describe(group[measure])})
    return pd.DataFrame(rows, columns=[by or "scope", "measure", *STAT_COLUMNS])


def build_report(conn: psycopg.Connection, window: Window, prices: Prices) -> Report:
    report = Report(window)
    jobs = load_jobs(conn, window)
    tz = window.tz
    figures = report_tables(conn, window.since, window.until, tz.key, top_errors=20)
    jobs["model"] = jobs["model"].cat.add_categories(["(no grade)"]).fillna("(no grade)")
    created_local = pd.to_datetime(jobs["created"], unit="s", utc=True).dt.tz_convert(tz)
    jobs["day"] = created_local.dt.strftime("%Y-%m-%d")

    statuses = ["pending", "processing", "completed", "failed", "cancelled"]
    by_status = (
        jobs.groupby(["task_type", "status"], observed=True)
        .size()
        .unstack(fill_value=0)
        .reindex(columns=statuses, fill_value=0)
    )
    finished = by_status[["completed", "failed", "cancelled"]].sum(axis=1)
    by_status["failure_rate"] = (by_status["failed"] / finished.where(finished > 0)).round(4)
    report.tables["jobs_by_status"] = by_status.reset_index()

    report.tables["durations"] = duration_stats(jobs, None)
    report.tables["durations_by_task_type"] = duration_stats(jobs, "task_type")
    report.tables["durations_by_model"] = duration_stats(jobs, "model")
    report.tables["durations_by_day"] = duration_stats(jobs, "day")

    failed = jobs["status"] == "failed"
    daily = jobs.groupby("day").agg(created=("status", "size"))
    daily["completed"] = jobs[jobs["status"] == "completed"].groupby("day").size()
    daily["failed"] = jobs[failed].groupby("day").size()
    daily = daily.fillna(0).astype(int)
    done = daily["completed"] + daily["failed"]
    daily["failure_rate"] = (daily["failed"] / done.where(done > 0)).round(4)
    total = _durations(jobs)["total"]
    daily["p95_total_seconds"] = total.groupby(jobs["day"]).quantile(0.95)
    report.tables["throughput_daily"] = daily.reset_index()

    completed_at = pd.to_datetime(
        jobs.loc[jobs["status"] == "completed", "completed"], unit="s", utc=True
    ).dt.tz_convert(tz)
    hourly = completed_at.dt.floor("h").value_counts().sort_index()
    report.tables["throughput_hourly"] = pd.DataFrame(
        {"hour": hourly.index.strftime("%Y-%m-%d %H:00"), "completed": hourly.to_numpy()}
    )
    attempts = jobs["attempts"].value_counts().sort_index()
    report.tables["attempts"] = pd.DataFrame(
        {"attempts": attempts.index, "jobs": attempts.to_numpy()}
    )

    report.tables["top_errors"] = frame(figures["errors"])
    tokens = frame(figures["tokens"])
    cost = [
        call_cost(row.model, row.prompt_tokens, row.completion_tokens, prices)
        for row in tokens.itertuples()
    ]
    tokens["cost_usd"] = cost
    report.tables["tokens_by_model"] = tokens

    scores = frame(figures["scores"])
    report.tables["score_counts"] = scores
    report.tables["scores_by_criterion"] = _score_stats(scores)
    report.tables["total_scores"] = frame(figures["total_scores"])

    queue = figures["review_queue"].rows[0]
    report.tables["review_decisions"] = frame(figures["review_decisions"])
    changes = frame(figures["review_changes"])
    changes["change_rate"] = (changes["changed"] / changes["decisions"]).round(4)
    report.tables["review_changes"] = changes
    report.tables["review_reasons"] = frame(figures["review_reasons"])
    by_model = frame(figures["grades_by_mode"])
    # what the batch grades would have cost one request at a time, minus what they cost
    by_model["saving_usd"] = [
        (call_cost(row.model, row.prompt_tokens, row.completion_tokens, prices) or 0.0)
        - row.cost_usd
        if row.mode == "batch"
        else 0.0
        for row in by_model.itertuples()
    ]
    modes = by_model.groupby("mode", sort=False, as_index=False)[
        ["grades", "cost_usd", "saving_usd"]
    ].sum()
    modes[["cost_usd", "saving_usd"]] = modes[["cost_usd", "saving_usd"]].round(6)
    report.tables["grades_by_mode"] = modes

    running = int(jobs["status"].isin(["pending", "processing"]).sum())
    evaluation = figures["evaluation_grades"].rows[0]
    report.total_seconds = total[jobs["status"] == "completed"]
    report.summary = {
        "window": f"{window.since.isoformat(timespec='seconds')} to "
        f"{window.until.isoformat(timespec='seconds')} ({tz.key})",
        "jobs": len(jobs),
        "completed": int((jobs["status"] == "completed").sum()),
        "failed": int(failed.sum()),
        "cancelled": int((jobs["status"] == "cancelled").sum()),
        "still_running": running,
        "failure_rate": _rate(
            int(failed.sum()), int(jobs["status"].isin(["completed", "failed"]).sum())
        ),
        # of graded (completed) jobs: a job that failed fast was not graded fast
        "p50_total_seconds": _round(report.total_seconds.quantile(0.5)),
        "p95_total_seconds": _round(report.total_seconds.quantile(0.95)),
        "cost_usd": round(sum(c for c in cost if c is not None), 6),
        "grades": int(tokens["grades"].sum()),
        "simulated_grades": int(
            tokens.loc[tokens["model"].str.startswith(SIMULATED_MODEL_PREFIX), "grades"].sum()
        ),
        "review_waiting": int(queue["waiting"]),
        "review_oldest_seconds": _round(queue["oldest_seconds"]),
        "review_decisions": int(
            report.tables["review_decisions"][["accepted", "overridden"]].to_numpy().sum()
        ),
        "review_overridden": int(report.tables["review_decisions"]["overridden"].sum()),
        "batch_grades": int(modes.loc[modes["mode"] == "batch", "grades"].sum()),
        "batch_saving_usd": round(float(modes["saving_usd"].sum()), 6),
        "evaluation_grades": int(evaluation["grades"]),
        "evaluation_cost_usd": round(float(evaluation["cost_usd"]), 6),
        "unpriced_grades": int(
            sum(g for g, c in zip(tokens["grades"], cost, strict=True) if c is None)
        ),
    }
    return report


def _score_stats(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for criterion, group in scores.groupby("criterion"):
        values = group["score"].repeat(group["grades"])
        rows.append(
            {
                "criterion": criterion,
                "max_points": int(group["max_points"].max()),
                **describe(values.astype(float)),
            }
        )
    return pd.DataFrame(rows, columns=["criterion", "max_points", *STAT_COLUMNS])


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float) -> float | None:
    return None if pd.isna(value) else round(float(value), 3)


def generate(
    settings: Settings,
    since: str | None,
    until: str | None,
    tz: str = "UTC",
    out: str | Path | None = None,
) -> tuple[Report, Path]:
    """Builds the report for the window and writes its folder under `out` (default
    GRADER_REPORTS_DIR, or $GRADER_HOME/reports)."""
    window = make_window(since, until, tz)
    prices = load_prices(settings.prices_file)
    with connect(settings) as conn:
        report = build_report(conn, window, prices)
    return report, write_report(report, Path(out) if out else settings.reports_dir)
