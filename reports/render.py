"""Writes a weekly report to a folder: one CSV per table, report.md, and report.html with PNG
charts (duration histogram, daily volume with failure rate, p95 trend)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd

if TYPE_CHECKING:
    from reports.weekly import Report


CHARTS = {
    "duration_histogram.png": "Total grading time of completed jobs",
    "daily_volume.png": "Jobs per day, with the failure rate",
    "p95_trend.png": "95th percentile of total grading time, per day",
}


def _no_data(ax, text: str = "no jobs in this window") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _charts(report: Report, folder: Path) -> None:
    daily = report.tables["throughput_daily"]

    fig, ax = plt.subplots(figsize=(7, 3.5))
    if report.total_seconds.empty:
        _no_data(ax)
    else:
        ax.hist(
            report.total_seconds, bins=min(50, max(5, int(math.sqrt(len(report.total_seconds)))))
        )
        ax.set_xlabel("seconds from trigger to grade")
        ax.set_ylabel("jobs")
    ax.set_title(CHARTS["duration_histogram.png"])
    fig.tight_layout()
    fig.savefig(folder / "duration_histogram.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    if daily.empty:
        _no_data(ax)
    else:
        ax.bar(daily["day"], daily["completed"], label="completed")
        ax.bar(daily["day"], daily["failed"], bottom=daily["completed"], label="failed")
        ax.set_ylabel("jobs")
        ax.tick_params(axis="x", labelrotation=45)
        rate = ax.twinx()
        rate.plot(daily["day"], daily["failure_rate"].fillna(0) * 100, color="black", marker="o")
        rate.set_ylabel("failure rate %")
        rate.set_ylim(bottom=0)
        ax.legend(loc="upper left")
    ax.set_title(CHARTS["daily_volume.png"])
    fig.tight_layout()
    fig.savefig(folder / "daily_volume.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    trend = daily.dropna(subset=["p95_total_seconds"]) if not daily.empty else daily
    if trend.empty:
        _no_data(ax, "no completed jobs in this window")
    else:
        ax.plot(trend["day"], trend["p95_total_seconds"], marker="o")
        ax.set_ylabel("seconds")
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_title(CHARTS["p95_trend.png"])
    fig.tight_layout()
    fig.savefig(folder / "p95_trend.png", dpi=100)
    plt.close(fig)


def _markdown_table(frame: pd.DataFrame, limit: int = 50) -> str:
    if frame.empty:
        return "_none_"

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |"
        for row in frame.head(limit).itertuples(index=False)
    ]
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows in the CSV_")
    return "\n".join(lines)


def summary_lines(report: Report) -> list[str]:
    s = report.summary
    if s["jobs"] == 0:
        return [f"Window: {s['window']}", "", "**There were no jobs in this window.**"]
    return [
        f"Window: {s['window']}",
        "",
        f"- jobs: {s['jobs']} ({s['completed']} completed, {s['failed']} failed, "
        f"{s['cancelled']} cancelled, {s['still_running']} still pending or processing)",
        f"- failure rate: {_percent(s['failure_rate'])}",
        f"- total time, trigger to grade: p50 {s['p50_total_seconds']} s, "
        f"p95 {s['p95_total_seconds']} s",
        f"- model cost: ${s['cost_usd']}",
    ]


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def write_report(report: Report, base: Path) -> Path:
    folder = base / report.window.label
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in report.tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    _charts(report, folder)

    md = ["# Weekly grading metrics", "", *summary_lines(report), ""]
    for name, frame in report.tables.items():
        md += [f"## {name.replace('_', ' ')}", "", _markdown_table(frame), ""]
    md += ["## charts", ""] + [f"![{title}]({file})" for file, title in CHARTS.items()]
    (folder / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    body = [
        "<h1>Weekly grading metrics</h1>",
        "<ul>"
        + "".join(
            f"<li>{html.escape(line[2:])}</li>"
            for line in summary_lines(report)
            if line.startswith("- ")
        )
        + "</ul>",
        f"<p>{html.escape(summary_lines(report)[0])}</p>",
    ]
    if report.summary["jobs"] == 0:
        body.append("<p><strong>There were no jobs in this window.</strong></p>")
    for file, title in CHARTS.items():
        caption = html.escape(title)
        body.append(f'<figure><img src="{file}" alt="{caption}"><figcaption>{caption}</figcaption>')
        body.append("</figure>")
    for name, frame in report.tables.items():
        body.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>")
        body.append(
            frame.head(200).to_html(
                index=False, na_rep="", float_format=lambda v: f"{v:.3f}", escape=True, border=0
            )
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Weekly grading metrics</title>'
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
    (folder / "report.html").write_text(page, encoding="utf-8")
    return folder
