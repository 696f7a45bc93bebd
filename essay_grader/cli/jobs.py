"""The commands on grading jobs: submit, grade, status, cancel, run-pending, reap, prune, jobs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import non_negative_float, positive_int
from essay_grader.cli.output import emit
from grader.errors import GraderError, InvalidEssayError

if TYPE_CHECKING:
    from essay_grader.service import GradingService
    from grader.jobs import JobStatus
    from grader.settings import Settings


def _service(settings: Settings) -> GradingService:
    from essay_grader.service import GradingService

    return GradingService(settings)


def _read_essay(path: str, settings: Settings) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(settings.max_essay_chars * 4 + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(settings.max_essay_chars * 4 + 1)
    except OSError as exc:
        raise GraderError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEssayError(f"{path} is not UTF-8 text") from None


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    essay = _read_essay(args.file, settings)
    submission_id = _service(settings).submit_essay(
        essay, student_ref=args.student_ref, rubric=args.rubric
    )
    emit(args, {"submission_id": str(submission_id)}, str(submission_id))
    return 0


def add_submit(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("submit", parents=[output], help="store an essay; prints its submission id")
    p.add_argument("file", help="UTF-8 text file with the essay ('-' reads standard input)")
    p.add_argument("--student-ref", help="your reference for the student (never sent to the model)")
    p.add_argument("--rubric", help="rubric file (.toml or .json); default: the built-in rubric")
    p.set_defaults(func=cmd_submit)


def _format_status(status: JobStatus) -> str:
    lines = [
        f"task        {status.task_id}",
        f"status      {status.status}",
        f"attempts    {status.attempts}",
        f"created     {status.created_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if status.started_at:
        lines.append(f"started     {status.started_at:%Y-%m-%d %H:%M:%S %Z}")
    if status.completed_at:
        lines.append(f"finished    {status.completed_at:%Y-%m-%d %H:%M:%S %Z}")
        lines.append(f"duration    {status.duration_seconds:.2f}s")
    if status.error_message:
        lines.append(f"error       {status.error_message}")
    if status.provider_batch_id:
        held = " (answers come within 24 h)" if status.status == "processing" else ""
        lines.append(f"batch       provider batch {status.provider_batch_id}{held}")
    elif status.mode == "batch" and status.status == "pending":
        lines.append("batch       waiting for the next batch run (grade-pending-batch)")
    grade = status.grade
    if grade is not None:
        note = "  (SIMULATED: not a real grade)" if grade.simulated else ""
        lines.append(f"score       {grade.total_score}/{grade.max_score}{note}")
        for c in grade.criteria:
            lines.append(f"  {c.name:<28} {c.score:>3}/{c.max_points:<3} {c.justification}")
        lines.append(f"feedback    {grade.feedback}")
        lines.append(
            f"model       {grade.model} ({grade.prompt_tokens} prompt + "
            f"{grade.completion_tokens} completion tokens, {grade.model_attempts} call(s))"
        )
        review = grade.review_state
        if grade.reviewed_by:
            review += f" by {grade.reviewed_by} at {grade.reviewed_at:%Y-%m-%d %H:%M:%S %Z}"
        elif grade.review_reasons:
            review += ": " + ", ".join(r["reason"] for r in grade.review_reasons)
        lines.append(f"review      {review} (version {grade.version})")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = _service(settings).check_grading_status(args.task_id)
    emit(args, status.to_dict(), _format_status(status))
    return 0


def add_status(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[output], help="show a grading job and its grade")
    p.add_argument("task_id")
    p.set_defaults(func=cmd_status)


def cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    service = _service(settings)
    if args.batch and args.wait:
        raise GraderError("--batch and --wait do not go together: a batch answers within 24 h")
    mode = "batch" if args.batch else "now"
    task_id = service.start_grading_job(args.submission_id, rubric=args.rubric, mode=mode)
    if not args.wait:
        emit(args, {"task_id": str(task_id)}, str(task_id))
        return 0
    status = service.grade_job(task_id, timeout=args.timeout)
    emit(args, status.to_dict(), _format_status(status))
    return 0


def add_grade(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "grade", parents=[output], help="start grading a submission; prints the task id"
    )
    p.add_argument("submission_id")
    p.add_argument("--rubric", help="grade by this rubric instead of the submission's")
    p.add_argument(
        "--wait", action="store_true", help="grade now (or wait for it) and print the grade"
    )
    p.add_argument(
        "--batch",
        action="store_true",
        help="grade in the provider's next batch (half the price, within 24 h) "
        "instead of now; `grader batch run` or the grade-pending-batch schedule sends it",
    )
    p.add_argument(
        "--timeout",
        type=non_negative_float,
        default=600.0,
        help="seconds to wait with --wait (default 600)",
    )
    p.set_defaults(func=cmd_grade)


def _progress_printer() -> tuple[Callable[[float, dict[str, int]], None], float]:
    """How much pending work is left while a batch runs: one updating line on a terminal, a
    line every few seconds otherwise."""
    tty = sys.stderr.isatty()

    def report(seconds: float, counts: dict[str, int]) -> None:
        line = f"[{seconds:6.1f}s] pending {counts['pending']}, processing {counts['processing']}"
        print(f"\r{line}   " if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return report, 0.5 if tty else 5.0


def cmd_run_pending(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader.runner import run_pending

    report, interval = _progress_printer()
    summary = run_pending(settings, args.limit, args.concurrency, report, interval)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    emit(
        args,
        summary,
        f"{summary['graded']} job(s) in {summary['seconds']:.1f}s: {summary['completed']} "
        f"completed, {summary['failed']} failed"
        + (f", {summary['lost']} lost to another worker" if summary["lost"] else "")
        + (f"\ngrading {summary['paused_reason']}" if summary["paused_reason"] else ""),
    )
    return 0


def add_run_pending(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run-pending", parents=[output], help="grade pending jobs in a batch")
    p.add_argument("--limit", type=positive_int, default=100, help="most jobs to grade (100)")
    p.add_argument("--concurrency", type=positive_int, default=10, help="jobs graded at once (10)")
    p.set_defaults(func=cmd_run_pending)


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    status = _service(settings).cancel_grading_job(args.task_id)
    emit(args, status.to_dict(), f"cancelled task {status.task_id}")
    return 0


def add_cancel(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("cancel", parents=[output], help="cancel a pending or processing job")
    p.add_argument("task_id")
    p.set_defaults(func=cmd_cancel)


def cmd_reap(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader.runner import reap

    counts = reap(settings)
    emit(
        args,
        counts,
        f"{counts['requeued']} job(s) back to pending, {counts['failed']} failed "
        "(their workers' leases had expired)",
    )
    return 0


def add_reap(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "reap", parents=[output], help="return the jobs of lost workers (expired leases)"
    )
    p.set_defaults(func=cmd_reap)


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.connections import connect
    from grader.store.jobs import prune_finished_jobs

    with connect(settings) as conn:
        counts = prune_finished_jobs(conn, args.older_than, args.with_grades)
    emit(
        args,
        counts,
        f"deleted {counts['jobs']} finished job(s) older than {args.older_than} days"
        + (f" and {counts['grades']} grade(s)" if args.with_grades else "; grades kept"),
    )
    return 0


def add_prune(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("prune", parents=[output], help="delete old finished jobs")
    p.add_argument("--older-than", type=positive_int, required=True, metavar="DAYS")
    p.add_argument("--with-grades", action="store_true", help="delete their grades too")
    p.set_defaults(func=cmd_prune)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.connections import connect
    from grader.store.monitoring import grading_time_stats
    from reports import monitoring

    with connect(settings) as conn:
        if args.view == "stats":
            stats = grading_time_stats(conn, args.days)
            emit(args, stats, monitoring.format_stats(stats))
            return 0
        frame = (monitoring.recent_jobs if args.view == "recent" else monitoring.failed_jobs)(
            conn, args.limit
        )
    if args.json:
        emit(args, frame.astype(object).where(frame.notna(), None).to_dict("records"), "")
    else:
        print(frame.to_string(index=False) if len(frame) else f"no {args.view} jobs")
    return 0


def add_jobs(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("jobs", parents=[output], help="monitoring: recent, failed, stats")
    p.add_argument("view", choices=["recent", "failed", "stats"])
    p.add_argument("--limit", type=positive_int, default=20, help="rows to show (20)")
    p.add_argument("--days", type=positive_int, default=7, help="window for stats (7)")
    p.set_defaults(func=cmd_jobs)
