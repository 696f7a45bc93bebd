"""The weekly metrics report flow: computes the report, writes its folder (CSV, Markdown, HTML
with charts) and publishes the summary and main tables as Prefect artifacts.

Not `flows/reports.py`: a worker loads a flow file by its path with the file's folder first on
sys.path, where a module of that name would hide the `reports` package."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from grader.settings import settings_for_run
from reports.render import summary_lines
from reports.weekly import generate

ARTIFACT_TABLES = ("jobs_by_status", "durations", "top_errors", "tokens_by_model")


@flow(name="weekly-metrics-report")
def weekly_metrics_report(
    since: str | None = None, until: str | None = None, tz: str = "UTC", out: str | None = None
) -> dict:
    """The last 7 days by default; `since`/`until` as dates or date-times in `tz`."""
    report, folder = generate(settings_for_run(), since, until, tz, out)
    create_markdown_artifact(
        key="weekly-metrics-summary",
        markdown="\n".join(
            ["# Weekly grading metrics", "", *summary_lines(report), "", f"Files: `{folder}`"]
        ),
        description="Weekly grading metrics: summary",
    )
    for name in ARTIFACT_TABLES:
        frame = report.tables[name]
        create_table_artifact(
            key=f"weekly-{name.replace('_', '-')}",
            table=frame.astype(object).where(frame.notna(), None).to_dict("records"),
            description=f"Weekly grading metrics: {name.replace('_', ' ')}",
        )
    return {**report.summary, "folder": str(folder)}
