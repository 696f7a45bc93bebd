"""Writes a weekly report to a folder: one CSV per table (machine-friendly column names, raw
numbers), report.md and report.html for people (a summary paragraph, a SIMULATED banner when
any grade came from the simulator, every measure labelled in words with its unit) and PNG
charts (trigger-to-grade times, jobs per day with the failure rate, the daily 95th percentile,
total scores)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator, PercentFormatter

if TYPE_CHECKING:
    from reports.weekly import Report

TITLE = "Weekly grading report"

# file -> (title drawn in the chart, caption saying how to read it)
CHARTS = {
    "duration_histogram.png": (
        "Time from trigger to grade",
        "Each bar counts the completed jobs whose time from trigger to stored grade fell in "
        "its range of seconds.",
    ),
    "daily_volume.png": (
        "Jobs per day and failure rate",
        "Bars: jobs created each day, split by outcome. Line (right axis): the share of "
        "finished jobs that failed.",
    ),
    "p95_trend.png": (
        "95% of jobs graded within, per day",
        "Each point is the time within which 95% of that day's completed jobs were graded.",
    ),
    "score_distribution.png": (
        "Total scores",
        "How many grades gave each total score (as a share of the rubric's maximum when "
        "rubrics of different sizes were graded).",
    ),
}


@dataclass(frozen=True)
class Column:
    label: str
    kind: str = "text"  # text | count | seconds | percent | usd | points


# How the CSV columns are shown to people. Statistic columns (mean, p95, ...) read as seconds
# in the duration tables and as points in the score table.
_STATS = {
    "mean": "mean",
    "min": "lowest",
    "p50": "median",
    "p90": "90th percentile",
    "p95": "95th percentile",
    "p99": "99th percentile",
    "max": "highest",
}
_DURATION_STATS = {
    "count": Column("jobs", "count"),
    **{k: Column(f"{v} (s)", "seconds") for k, v in _STATS.items()},
    "min": Column("fastest (s)", "seconds"),
    "max": Column("slowest (s)", "seconds"),
}
_COLUMNS = {
    "task_type": Column("task type"),
    "scope": Column("jobs"),
    "measure": Column("time measured"),
    "model": Column("model"),
    "day": Column("day"),
    "hour": Column("hour"),
    "pending": Column("pending", "count"),
    "processing": Column("being graded", "count"),
    "completed": Column("completed", "count"),
    "failed": Column("failed", "count"),
    "cancelled": Column("cancelled", "count"),
    "created": Column("jobs created", "count"),
    "failure_rate": Column("failure rate (%)", "percent"),
    "p95_total_seconds": Column("95% graded within (s)", "seconds"),
    "attempts": Column("attempts", "count"),
    "jobs": Column("jobs", "count"),
    "error": Column("error (numbers and ids replaced)"),
    "grades": Column("grades", "count"),
    "prompt_tokens": Column("prompt tokens", "count"),
    "completion_tokens": Column("completion tokens", "count"),
    "cost_usd": Column("cost (US$)", "usd"),
    "criterion": Column("criterion"),
    "score": Column("score (points)", "points"),
    "max_points": Column("out of (points)", "points"),
    "total_score": Column("total score (points)", "points"),
    "accepted": Column("accepted as graded", "count"),
    "overridden": Column("scores changed", "count"),
    "decisions": Column("decisions", "count"),
    "changed": Column("score changed", "count"),
    "change_rate": Column("changed (%)", "percent"),
    "mean_abs_change": Column("mean change (points)", "points"),
    "reason": Column("reason"),
    "mode": Column("how the model was called"),
    "saving_usd": Column("saved against one request each (US$)", "usd"),
    "max_score": Column("out of (points)", "points"),
}
_MEASURE_WORDS = {
    "queue_wait": "waiting for a worker",
    "processing": "grading",
    "total": "trigger to grade",
}

# table -> (heading, one line on what it holds)
TABLES = {
    "jobs_by_status": ("Jobs by status", "Failure rate: failed jobs among finished ones."),
    "durations": ("How long grading took", "All jobs in the window, in seconds."),
    "durations_by_task_type": ("How long grading took, by task type", "In seconds."),
    "durations_by_model": ("How long grading took, by model", "In seconds."),
    "durations_by_day": ("How long grading took, by day", "In seconds."),
    "throughput_daily": ("Jobs per day", "Days in the report's time zone."),
    "throughput_hourly": ("Grades per hour", "Completed jobs, by the hour they completed."),
    "attempts": ("Attempts per job", "How many times a worker took each job up."),
    "top_errors": (
        "Most common failure reasons",
        "Ids and numbers replaced, so one cause is one row.",
    ),
    "tokens_by_model": (
        "Tokens and cost by model",
        "Cost from the price table; the simulator is free.",
    ),
    "score_counts": ("Scores given, per criterion", "How many grades gave each score."),
    "scores_by_criterion": ("Scores by criterion", "In points."),
    "total_scores": ("Total scores", "How many grades gave each total."),
    "review_decisions": ("Teachers' decisions per day", "Accepted as graded, or scores changed."),
    "review_changes": (
        "What teachers changed, per criterion",
        "How often a teacher's decision changed the model's score, and by how much: the live "
        "measure of agreement between the model and the school's teachers.",
    ),
    "review_reasons": ("Why grades were sent to review", "Grades of the window, by reason."),
    "grades_by_mode": (
        "Grades by how the model was called",
        "One request each, or in a provider batch at half the price.",
    ),
}


def _column(table: str, name: str) -> Column:
    if name in _DURATION_STATS and table.startswith("durations"):
        return _DURATION_STATS[name]
    if table == "scores_by_criterion" and name in _STATS:
        return Column(_STATS[name], "points")
    if table == "scores_by_criterion" and name == "count":
        return Column("grades", "count")
    return _COLUMNS.get(name, Column(name.replace("_", " ")))


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def seconds(value: float) -> str:
    """A duration in seconds, with as many decimals as its size deserves."""
    return _number(value, 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0)


def percent(rate: float | None) -> str:
    if rate is None or pd.isna(rate):
        return "–"
    if 0 < rate < 0.001:
        return "under 0.1%"
    return f"{rate * 100:.1f}%"


def usd(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "unknown (no price for this model)"
    if value == 0:
        return "$0.00"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.6f}".rstrip("0")


def _cell(kind: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "text":
        return str(value)
    if kind == "percent":
        return percent(float(value))
    if kind == "usd":
        return usd(float(value))
    if kind == "seconds":
        return seconds(float(value))
    if kind == "count":
        return f"{int(value):,}"
    return _number(float(value), 2)  # points: 10, 7.5, 6.33


def display(table: str, frame: pd.DataFrame) -> tuple[list[Column], list[list[str]]]:
    """A table as people read it: labelled columns and formatted cells."""
    columns = [_column(table, name) for name in frame.columns]
    rows = []
    for record in frame.itertuples(index=False):
        row = []
        for name, column, value in zip(frame.columns, columns, record, strict=True):
            if name == "measure":
                value = _MEASURE_WORDS.get(value, value)
            elif name == "scope" and value == "all":
                value = "all jobs"
            row.append(_cell(column.kind, value))
        rows.append(row)
    return columns, rows


def duration(value: float | None) -> str:
    """A duration for a sentence: 41 s, 4.2 min, 1.5 h."""
    if value is None or pd.isna(value):
        return "–"
    if value < 60:
        return f"{seconds(value)} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    if value < 2 * 86400:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} days"


def simulated_warning(report: Report) -> str | None:
    s = report.summary
    if not s["simulated_grades"]:
        return None
    return (
        f"SIMULATED: {s['simulated_grades']:,} of the {s['grades']:,} grades in this window came "
        "from the built-in model simulator, not a real model. Their scores and feedback are not "
        "real grades."
    )


def summary_paragraph(report: Report) -> str:
    """One paragraph a head of department can read."""
    s = report.summary
    window = report.window.describe()
    if s["jobs"] == 0:
        return f"There were no jobs in this window ({window})." + _evaluation_note(s)
    text = (
        f"{s['completed']:,} essays graded in this window ({window}), {s['failed']:,} failed "
        f"({percent(s['failure_rate'])} of finished jobs)"
    )
    if s["p95_total_seconds"] is not None:
        text += (
            f"; 95% were graded within {duration(s['p95_total_seconds'])} of the request "
            f"(half within {duration(s['p50_total_seconds'])})"
        )
    text += "."
    others = []
    if s["cancelled"]:
        others.append(f"{s['cancelled']:,} cancelled")
    if s["still_running"]:
        others.append(f"{s['still_running']:,} still waiting or being graded")
    if others:
        text += " " + " and ".join(others).capitalize() + "."
    text += f" Model cost: {usd(s['cost_usd'])}"
    if s["unpriced_grades"]:
        text += f", plus {s['unpriced_grades']:,} grades by models with no known price"
    if s["batch_grades"]:
        text += (
            f"; {_grades(s['batch_grades'])} went through batches, saving "
            f"{usd(s['batch_saving_usd'])}"
        )
    text += "." + _review_note(s)
    return text + _evaluation_note(s)


def _grades(n: int) -> str:
    return f"{n:,} grade" + ("" if n == 1 else "s")


def _review_note(s: dict[str, Any]) -> str:
    note = ""
    if s["review_decisions"]:
        share = percent(s["review_overridden"] / s["review_decisions"])
        note += (
            f" Teachers reviewed {_grades(s['review_decisions'])} and changed scores on "
            f"{s['review_overridden']:,} ({share})."
        )
    if s["review_waiting"]:
        note += (
            f" {_grades(s['review_waiting'])} waiting for review, the oldest for "
            f"{duration(s['review_oldest_seconds'])}."
        )
    return note


def _evaluation_note(s: dict[str, Any]) -> str:
    if not s["evaluation_grades"]:
        return ""
    return (
        f" Evaluation runs (grader evaluate) graded another {s['evaluation_grades']:,} essays "
        f"({usd(s['evaluation_cost_usd'])}), not counted above."
    )


def summary_lines(report: Report) -> list[str]:
    """The report's head in Markdown: the simulated warning, the paragraph, the key figures."""
    s = report.summary
    warning = simulated_warning(report)
    lines = [f"> **{warning}**", ""] if warning else []
    lines += [summary_paragraph(report)]
    if s["jobs"]:
        lines += [
            "",
            f"- jobs: {s['jobs']:,} ({s['completed']:,} completed, {s['failed']:,} failed, "
            f"{s['cancelled']:,} cancelled, {s['still_running']:,} still pending or processing)",
            f"- failure rate: {percent(s['failure_rate'])} of finished jobs",
            f"- time from trigger to grade: median {duration(s['p50_total_seconds'])}, "
            f"95% within {duration(s['p95_total_seconds'])}",
            f"- model cost: {usd(s['cost_usd'])}",
            f"- teacher review: {s['review_decisions']:,} decisions, {s['review_overridden']:,} "
            f"with changed scores; {s['review_waiting']:,} grades waiting",
        ]
    return lines


def _style_axes(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, ax, folder: Path, file: str) -> None:
    ax.set_title(CHARTS[file][0])
    fig.tight_layout()
    fig.savefig(folder / file, dpi=100)
    plt.close(fig)


def _duration_histogram(report: Report, folder: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    values = report.total_seconds.to_numpy(dtype=float)
    if values.size == 0:
        _no_data(ax, "no completed jobs in this window")
    else:
        edges = np.histogram_bin_edges(values, bins="auto")
        if len(edges) > 51:
            edges = np.histogram_bin_edges(values, bins=50)
        ax.hist(values, bins=edges, edgecolor="white")
        ax.set_xlabel("seconds from trigger to stored grade")
        ax.set_ylabel("completed jobs")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _style_axes(ax)
    _save(fig, ax, folder, "duration_histogram.png")


def _daily_volume(report: Report, folder: Path) -> None:
    daily = report.tables["throughput_daily"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if daily.empty:
        _no_data(ax, "no jobs in this window")
    else:
        other = daily["created"] - daily["completed"] - daily["failed"]
        ax.bar(daily["day"], daily["completed"], label="completed", color="#4878a8")
        ax.bar(
            daily["day"],
            daily["failed"],
            bottom=daily["completed"],
            label="failed",
            color="#d1603d",
        )
        ax.bar(
            daily["day"],
            other,
            bottom=daily["completed"] + daily["failed"],
            label="cancelled or unfinished",
            color="#bbbbbb",
        )
        ax.set_ylabel("jobs")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelrotation=45)
        rate_ax = ax.twinx()
        rate = daily["failure_rate"].fillna(0)
        rate_ax.plot(daily["day"], rate, color="black", marker="o", label="failure rate")
        rate_ax.set_ylabel("failure rate")
        rate_ax.set_ylim(0, max(0.05, float(rate.max()) * 1.25))
        rate_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
        # below the chart, where it cannot cover a bar
        fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
    ax.set_title(CHARTS["daily_volume.png"][0])
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(folder / "daily_volume.png", dpi=100)
    plt.close(fig)


def _p95_trend(report: Report, folder: Path) -> None:
    daily = report.tables["throughput_daily"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    trend = daily.dropna(subset=["p95_total_seconds"]) if not daily.empty else daily
    if trend.empty:
        _no_data(ax, "no completed jobs in this window")
    else:
        ax.plot(trend["day"], trend["p95_total_seconds"], marker="o")
        ax.set_ylabel("seconds from trigger to grade")
        ax.set_ylim(bottom=0)
        ax.tick_params(axis="x", labelrotation=45)
        _style_axes(ax)
    _save(fig, ax, folder, "p95_trend.png")


def _score_distribution(report: Report, folder: Path) -> None:
    scores = report.tables["total_scores"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if scores.empty:
        _no_data(ax, "no grades in this window")
    elif scores["max_score"].nunique() == 1:
        top = int(scores["max_score"].iloc[0])
        counts = scores.set_index("total_score")["grades"].reindex(range(top + 1), fill_value=0)
        ax.bar(counts.index, counts.to_numpy(), color="#4878a8")
        ax.set_xlabel(f"total score (out of {top})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        shares = scores["total_score"] / scores["max_score"]
        ax.hist(shares, bins=np.linspace(0, 1, 11), weights=scores["grades"], edgecolor="white")
        ax.set_xlabel("total score, share of the rubric's maximum")
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    if not scores.empty:
        ax.set_ylabel("grades")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _style_axes(ax)
    _save(fig, ax, folder, "score_distribution.png")


def _charts(report: Report, folder: Path) -> None:
    _duration_histogram(report, folder)
    _daily_volume(report, folder)
    _p95_trend(report, folder)
    _score_distribution(report, folder)


def _markdown_table(table: str, frame: pd.DataFrame, limit: int = 50) -> str:
    if frame.empty:
        return "_None in this window._"
    columns, rows = display(table, frame.head(limit))

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(c.label for c in columns) + " |",
        "|" + "".join("---|" if c.kind == "text" else "---:|" for c in columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit:,} more rows in {table}.csv_")
    return "\n".join(lines)


def _html_table(table: str, frame: pd.DataFrame, limit: int = 200) -> str:
    if frame.empty:
        return '<p class="empty">None in this window.</p>'
    columns, rows = display(table, frame.head(limit))
    numeric = [c.kind != "text" for c in columns]
    head = "".join(
        f"<th{' class=num' if n else ''}>{html.escape(c.label)}</th>"
        for c, n in zip(columns, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if n else ''}>{html.escape(v)}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    more = (
        f'<p class="more">{len(frame) - limit:,} more rows in {table}.csv</p>'
        if len(frame) > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}"
    ".simulated{background:#fff3cd;border:2px solid #c9a227;padding:.8em 1em;font-weight:bold}"
    ".summary{font-size:1.1em}"
    "table{border-collapse:collapse;font-size:13px;margin-bottom:.5em}"
    "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}"
    "td.num,td:first-child{white-space:nowrap}"
    ".num{text-align:right;font-variant-numeric:tabular-nums}"
    ".empty,.more,.note{color:#666;font-style:italic}"
    "figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%}"
)


def write_report(report: Report, base: Path) -> Path:
    folder = base / report.window.label
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in report.tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    _charts(report, folder)

    md = [f"# {TITLE}", "", *summary_lines(report), ""]
    md += ["## Charts", ""]
    for file, (title, caption) in CHARTS.items():
        md += [f"![{title}]({file})", "", f"_{caption}_", ""]
    for name, frame in report.tables.items():
        heading, note = TABLES[name]
        md += [f"## {heading}", "", f"_{note}_", "", _markdown_table(name, frame), ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")

    warning = simulated_warning(report)
    s = report.summary
    body = [f"<h1>{TITLE}</h1>"]
    if warning:
        body.append(f'<p class="simulated" role="alert">{html.escape(warning)}</p>')
    body.append(f'<p class="summary">{html.escape(summary_paragraph(report))}</p>')
    if s["jobs"]:
        body.append(
            "<ul>"
            + "".join(
                f"<li>{html.escape(line[2:])}</li>"
                for line in summary_lines(report)
                if line.startswith("- ")
            )
            + "</ul>"
        )
    body.append("<h2>Charts</h2>")
    for file, (title, caption) in CHARTS.items():
        body.append(
            f'<figure><img src="{file}" alt="{html.escape(title)}" width="700">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    for name, frame in report.tables.items():
        heading, note = TABLES[name]
        body += [
            f"<h2>{html.escape(heading)}</h2>",
            f'<p class="note">{html.escape(note)}</p>',
            _html_table(name, frame),
        ]
    write_page(folder / "report.html", f"{TITLE}: {report.window.describe()}", body)
    return folder


def write_page(path: Path, title: str, body: list[str]) -> None:
    """A report's HTML page: its title, its style, the body's parts (already escaped HTML)."""
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
