"""`grader review` (the teachers' queue, a grade, accept or override) and `grader regrade` (what
an older version of a rubric graded, graded again)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import positive_int
from essay_grader.cli.output import emit

if TYPE_CHECKING:
    from grader.settings import Settings


def _reviewer() -> str:
    """Who decides from the command line: the OS user."""
    import getpass

    return getpass.getuser()


def cmd_review_list(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import review
    from grader.store.connections import connect

    with connect(settings) as conn:
        rows, cursor = review.queue(
            conn,
            state=args.state,
            reason=args.reason,
            rubric=args.rubric,
            cursor=args.cursor,
            limit=args.limit,
        )
        totals = review.counts(conn)
    lines = [
        f"{r['task_id']}  {r['total_score']:>3}/{r['max_score']:<3}  "
        f"{r['created_at']:%Y-%m-%d %H:%M}  "
        + (", ".join(x["reason"] for x in r["review_reasons"]) or "-")
        for r in rows
    ]
    lines.append(
        f"{len(rows)} shown; {totals['needs_review']} need review, {totals['reviewed']} reviewed"
        + (f"; next page: --cursor {cursor}" if cursor else "")
    )
    emit(args, {"grades": rows, "next_cursor": cursor, "counts": totals}, "\n".join(lines))
    return 0


def cmd_review_show(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import review
    from grader.store.connections import connect
    from grader.store.jobs import parse_uuid

    with connect(settings) as conn:
        item = review.detail(conn, parse_uuid(args.task_id, "task"))
    lines = [
        f"task        {item['task_id']}",
        f"rubric      {item['rubric']}",
        f"score       {item['total_score']}/{item['max_score']}  ({item['model']})",
        *(
            f"  {c['key']:<16} {c['score']:>3}/{c['max_points']:<3} {c['justification']}"
            for c in item["criteria"]
        ),
        f"review      {item['review_state']} (version {item['version']})",
        *(f"  reason    {r['reason']}: {json.dumps(r['detail'])}" for r in item["review_reasons"]),
        *(
            f"  {h['decided_at']:%Y-%m-%d %H:%M} {h['decided_by']} {h['action']} "
            f"{json.dumps(h['after'])} {h['note']}"
            for h in item["history"]
        ),
    ]
    if args.essay:
        lines += ["", item["essay"]]
    data = {k: v for k, v in item.items() if args.essay or k != "essay"}
    emit(args, data, "\n".join(lines))
    return 0


def cmd_review_decide(args: argparse.Namespace, settings: Settings) -> int:
    from grader.review import parse_scores
    from grader.store import review
    from grader.store.connections import connect
    from grader.store.jobs import parse_uuid

    scores = parse_scores(getattr(args, "score", None) or [])
    with connect(settings) as conn:
        result = review.decide(
            conn,
            parse_uuid(args.task_id, "task"),
            action=args.action,
            who=_reviewer(),
            version=args.version,
            scores=scores,
            note=args.note or "",
        )
    emit(
        args,
        result,
        f"{result['action']}ed task {result['task_id']}: total {result['total_score']} "
        f"(version {result['version']}, by {result['reviewed_by']})",
    )
    return 0


def add_review(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    review = sub.add_parser(
        "review", help="teacher review: the queue, a grade, accept or override"
    ).add_subparsers(dest="review_command", required=True, metavar="ACTION")
    p = review.add_parser("list", parents=[output], help="grades waiting for review (a page)")
    p.add_argument("--state", default="needs_review", choices=["needs_review", "reviewed", "auto"])
    p.add_argument("--reason", help="only this reason (possible_prompt_injection, ...)")
    p.add_argument("--rubric", help="only grades by the rubric of this name")
    p.add_argument("--limit", type=positive_int, default=50, help="grades per page (50)")
    p.add_argument("--cursor", help="the page after this one (printed at the end of a page)")
    p.set_defaults(func=cmd_review_list)
    p = review.add_parser("show", parents=[output], help="one grade, its reasons and history")
    p.add_argument("task_id")
    p.add_argument("--essay", action="store_true", help="print the essay too")
    p.set_defaults(func=cmd_review_show)
    for action, text in (
        ("accept", "accept the grade as it is"),
        ("override", "change criterion scores"),
    ):
        p = review.add_parser(action, parents=[output], help=text)
        p.add_argument("task_id")
        if action == "override":
            p.add_argument(
                "--score",
                action="append",
                metavar="KEY=N",
                required=True,
                help="a criterion's new score (repeat for several)",
            )
        p.add_argument("--note", help="why (kept in the grade's history)")
        p.add_argument(
            "--version",
            type=positive_int,
            help="the version you reviewed: refused if the grade changed since",
        )
        p.set_defaults(func=cmd_review_decide, action=action)


def cmd_regrade(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from grader.export import parse_since
    from grader.store import review
    from grader.store.connections import connect
    from grader.store.jobs import save_rubric

    name = args.rubric
    with connect(settings) as conn:
        if Path(name).suffix.lower() in (".toml", ".json"):  # an edited file: a new version
            from grader.grading.rubric import load_rubric

            rubric = load_rubric(name)
            save_rubric(conn, rubric)
            name = rubric.name
        result = review.regrade(
            conn,
            name,
            since=parse_since(args.since),
            only_auto=args.only_auto,
            include_reviewed=args.include_reviewed,
        )
    emit(
        args,
        result,
        f"{result['queued']} regrading job(s) queued by {result['rubric']!r} version "
        f"{result['version']} ({result['already_queued']} already queued or done, "
        f"{result['skipped_reviewed']} reviewed grades left alone"
        + (
            f", {result['skipped_needs_review']} waiting for review left alone"
            if args.only_auto
            else ""
        )
        + "); a running stack grades them, or `grader run-pending`",
    )
    return 0


def add_regrade(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "regrade", parents=[output], help="regrade what an older version of a rubric graded"
    )
    p.add_argument(
        "--rubric", required=True, help="a rubric name (its newest version), or an edited file"
    )
    p.add_argument("--since", help="only grades made since this date (UTC) or date-time")
    p.add_argument("--only-auto", action="store_true", help="leave grades waiting for review")
    p.add_argument(
        "--include-reviewed", action="store_true", help="regrade teacher-reviewed grades too"
    )
    p.set_defaults(func=cmd_regrade)
