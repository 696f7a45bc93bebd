"""The files the grades leave in: `grader export` (the gradebook as CSV or JSONL) and
`grader report` (the weekly metrics report)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from essay_grader.cli.output import emit

if TYPE_CHECKING:
    from grader.settings import Settings


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from reports.render import summary_lines
    from reports.weekly import generate

    report, folder = generate(settings, args.since, args.until, args.tz, args.out)
    files = sorted(p.name for p in folder.iterdir())
    emit(
        args,
        {**report.summary, "folder": str(folder), "files": files},
        "\n".join([*summary_lines(report), "", f"written to {folder}/ ({len(files)} files)"]),
    )
    return 0


def add_report(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report", parents=[output], help="weekly metrics report: CSV, Markdown, HTML, charts"
    )
    p.add_argument(
        "--since",
        help="start: a date (midnight in --tz) or ISO date-time; default 7 days before --until",
    )
    p.add_argument("--until", help="end, exclusive; default now")
    p.add_argument("--tz", default="UTC", help="time zone of days and hours (UTC)")
    p.add_argument("--out", help="base folder (default $GRADER_HOME/reports)")
    p.set_defaults(func=cmd_report)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import nullcontext

    from grader.export import parse_since, write_csv, write_jsonl
    from grader.store import export
    from grader.store.connections import connect

    since = parse_since(args.since)
    with connect(settings) as conn:
        keys = export.criterion_keys(conn, since, args.rubric)
        target = (
            open(args.out, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
            if args.out
            else nullcontext(sys.stdout)
        )
        with target as out:
            records = export.grades(conn, since, args.rubric)
            if args.format == "csv":
                count = write_csv(records, keys, out)
            else:
                count = write_jsonl(records, out)
    if args.out:
        print(f"{count} grades written to {args.out}", file=sys.stderr)
    return 0


def add_export(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", help="the gradebook: every grade as CSV or JSONL")
    p.add_argument("--since", help="grades made since this date (UTC) or ISO date-time")
    p.add_argument("--rubric", help="only grades by the rubric of this name")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--out", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)
