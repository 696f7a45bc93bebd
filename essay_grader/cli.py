"""The `grader` command line.

Every command that prints data takes --json. Expected mistakes (bad ids, unreadable files, an
unreachable database) print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from grader.errors import ConfigError, GraderError, InvalidEssayError
from grader.settings import Settings, redact_url

if TYPE_CHECKING:
    from grader.jobs import JobStatus

# Heavy modules (psycopg, pydantic, openai, prefect, pandas, matplotlib, fastapi) are imported
# by the commands that need them, so that `grader --help` and `grader status` start at once.


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def json_default(value: Any) -> str:
    """For json.dumps: ISO 8601 for times, str() for ids and the rest."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=json_default) if args.json else text)


def _say(text: str) -> None:
    print(text, flush=True)


def _quiet(text: str) -> None:
    pass


def _client(settings: Settings):
    from essay_grader.client import GraderClient

    return GraderClient(settings)


def _connect(settings: Settings):
    """A connection to a database whose schema is current, or a one-line reason why not."""
    from grader.store.connections import connect

    return connect(settings)


# --- commands -----------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.connections import migrate_database

    applied = migrate_database(settings)
    _emit(
        args,
        {"applied": applied},
        "\n".join(f"applied {name}" for name in applied) or "database schema is up to date",
    )
    return 0


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
    submission_id = _client(settings).submit_essay(
        essay, student_ref=args.student_ref, rubric=args.rubric
    )
    _emit(args, {"submission_id": str(submission_id)}, str(submission_id))
    return 0


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
    status = _client(settings).check_grading_status(args.task_id)
    _emit(args, status.to_dict(), _format_status(status))
    return 0


def cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings)
    if args.batch and args.wait:
        raise GraderError("--batch and --wait do not go together: a batch answers within 24 h")
    mode = "batch" if args.batch else "now"
    task_id = client.start_grading_job(args.submission_id, rubric=args.rubric, mode=mode)
    if not args.wait:
        _emit(args, {"task_id": str(task_id)}, str(task_id))
        return 0
    status = client.grade_job(task_id, timeout=args.timeout)
    _emit(args, status.to_dict(), _format_status(status))
    return 0


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
    _emit(
        args,
        summary,
        f"{summary['graded']} job(s) in {summary['seconds']:.1f}s: {summary['completed']} "
        f"completed, {summary['failed']} failed"
        + (f", {summary['lost']} lost to another worker" if summary["lost"] else "")
        + (f"\ngrading {summary['paused_reason']}" if summary["paused_reason"] else ""),
    )
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    status = _client(settings).cancel_grading_job(args.task_id)
    _emit(args, status.to_dict(), f"cancelled task {status.task_id}")
    return 0


def cmd_reap(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader.runner import reap

    counts = reap(settings)
    _emit(
        args,
        counts,
        f"{counts['requeued']} job(s) back to pending, {counts['failed']} failed "
        "(their workers' leases had expired)",
    )
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.jobs import prune_finished_jobs

    with _connect(settings) as conn:
        counts = prune_finished_jobs(conn, args.older_than, args.with_grades)
    _emit(
        args,
        counts,
        f"deleted {counts['jobs']} finished job(s) older than {args.older_than} days"
        + (f" and {counts['grades']} grade(s)" if args.with_grades else "; grades kept"),
    )
    return 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.monitoring import grading_time_stats
    from reports import monitoring

    with _connect(settings) as conn:
        if args.view == "stats":
            stats = grading_time_stats(conn, args.days)
            _emit(args, stats, monitoring.format_stats(stats))
            return 0
        frame = (monitoring.recent_jobs if args.view == "recent" else monitoring.failed_jobs)(
            conn, args.limit
        )
    if args.json:
        _emit(args, frame.astype(object).where(frame.notna(), None).to_dict("records"), "")
    else:
        print(frame.to_string(index=False) if len(frame) else f"no {args.view} jobs")
    return 0


def cmd_evaluate_import(args: argparse.Namespace, settings: Settings) -> int:
    from grader.evaluation import ScoredSet, parse_mapping
    from grader.grading.rubric import load_rubric
    from grader.store import evaluation

    rubric = load_rubric(args.rubric)
    path = Path(args.file)
    scored = ScoredSet(path, rubric, parse_mapping(args.map), args.scale)
    name = args.name or path.stem
    with _connect(settings) as conn:
        items = evaluation.import_set(conn, scored, rubric, name, path.name)
    result = {
        "set": name,
        "items": items,
        "rubric": rubric.name,
        "targets": list(scored.layout.targets),
        "second_rater": list(scored.layout.second),
    }
    _emit(
        args,
        result,
        f"imported set {result['set']!r}: {result['items']} essays scored on "
        f"{', '.join(result['targets'])}"
        + (
            f" (second rater: {', '.join(result['second_rater'])})"
            if result["second_rater"]
            else ""
        ),
    )
    return 0


def cmd_evaluate_list(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import evaluation

    with _connect(settings) as conn:
        sets = evaluation.list_sets(conn)
    lines = [
        f"{s['name']:<30} {s['items']:>7} essays  {s['runs']:>3} runs  {s['rubric']}" for s in sets
    ]
    _emit(args, sets, "\n".join(lines) or "no evaluation sets (import one: grader evaluate import)")
    return 0


def cmd_evaluate_run(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack

    from essay_grader.runner import run_here
    from flows.evaluation import evaluate_agreement
    from grader.evaluation import load_anchors
    from grader.store import evaluation

    noise = {
        k: v
        for k, v in (
            ("off_by_one", args.simulate_off_by_one),
            ("anchored_off_by_one", args.simulate_anchored_off_by_one),
            ("bias", args.simulate_bias),
            ("random", args.simulate_random),
        )
        if v is not None
    }
    anchors = None
    if args.anchors:
        from grader.grading.rubric import parse_rubric

        with _connect(settings) as conn:
            set_row = evaluation.find_set(conn, args.set)
        rubric = parse_rubric(set_row["rubric"], args.set)
        anchors = load_anchors(Path(args.anchors), rubric)
    with ExitStack() as stack:
        if settings.simulated:
            from model_simulator import LLMSimulator, SimulatorConfig

            with _connect(settings) as conn:
                reference = evaluation.reference_scores(
                    conn, evaluation.find_set(conn, args.set)["set_id"]
                )
            config = SimulatorConfig(reference=reference, reference_noise=noise, seed=args.seed)
            simulator = stack.enter_context(LLMSimulator(config).serve_in_thread())
            settings = replace(settings, openai_base_url=simulator.base_url, deployment="")
            print(
                "No OPENAI_API_KEY: grading with the built-in model simulator, told the set's "
                f"human scores with noise {noise or 'none'}. The figures are SIMULATED: they "
                "measure that noise, not a model.",
                file=sys.stderr,
            )
        elif noise:
            raise ConfigError("--simulate-* options apply only to the built-in simulator")
        summary = run_here(
            settings,
            lambda: evaluate_agreement(
                args.set,
                args.label,
                args.model,
                args.concurrency,
                args.timeout / 60,
                args.samples,
                anchors,
                noise or None,
            ),
        )
    from reports.agreement import headline, simulated_warning

    warning = simulated_warning(summary)
    _emit(
        args,
        summary,
        "\n".join(
            [
                *([warning] if warning else []),
                headline(summary),
                f"report: {summary['folder']}/report.html",
            ]
        ),
    )
    return 0


def cmd_evaluate_compare(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import evaluation
    from reports.agreement import compare

    with _connect(settings) as conn:
        runs = [evaluation.find_run(conn, ref) for ref in (args.run_a, args.run_b)]
    for ref, run in zip((args.run_a, args.run_b), runs, strict=True):
        if run["metrics"] is None:
            raise GraderError(f"run {ref!r} has not finished: no figures to compare")
    table = compare(runs[0]["metrics"], runs[1]["metrics"])
    a, b = (f"{r['label']} ({r['model']})" for r in runs)
    width = max(len(m) for m in table["measure"])
    lines = [f"{'':<{width}}  {'A: ' + a:<28}  B: {b}"]
    lines += [f"{row.measure:<{width}}  {row.a:<28}  {row.b}" for row in table.itertuples()]
    if any(r["metrics"]["simulated"] for r in runs):
        lines.append("(SIMULATED: at least one run was graded by the built-in simulator)")
    _emit(
        args,
        {"a": runs[0]["metrics"], "b": runs[1]["metrics"], "table": table.to_dict("records")},
        "\n".join(lines),
    )
    return 0


def _reviewer() -> str:
    """Who decides from the command line: the OS user."""
    import getpass

    return getpass.getuser()


def cmd_review_list(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import review

    with _connect(settings) as conn:
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
    _emit(args, {"grades": rows, "next_cursor": cursor, "counts": totals}, "\n".join(lines))
    return 0


def cmd_review_show(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import review
    from grader.store.jobs import parse_uuid

    with _connect(settings) as conn:
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
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_review_decide(args: argparse.Namespace, settings: Settings) -> int:
    from grader.review import parse_scores
    from grader.store import review
    from grader.store.jobs import parse_uuid

    scores = parse_scores(getattr(args, "score", None) or [])
    with _connect(settings) as conn:
        result = review.decide(
            conn,
            parse_uuid(args.task_id, "task"),
            action=args.action,
            who=_reviewer(),
            version=args.version,
            scores=scores,
            note=args.note or "",
        )
    _emit(
        args,
        result,
        f"{result['action']}ed task {result['task_id']}: total {result['total_score']} "
        f"(version {result['version']}, by {result['reviewed_by']})",
    )
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import nullcontext

    from grader.export import parse_since, write_csv, write_jsonl
    from grader.store import export

    since = parse_since(args.since)
    with _connect(settings) as conn:
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


def cmd_regrade(args: argparse.Namespace, settings: Settings) -> int:
    from grader.export import parse_since
    from grader.store import review
    from grader.store.jobs import save_rubric

    name = args.rubric
    with _connect(settings) as conn:
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
    _emit(
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


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import provider_batches

    if args.action == "run":
        return _run_batch(args, settings)
    if args.action != "list" and not args.ref:
        raise GraderError(f"batch {args.action} needs the batch's reference or provider id")
    with _connect(settings) as conn:
        rows = provider_batches.listing(conn, args.ref, args.limit)
    if args.ref and not rows:
        raise GraderError(f"no batch with reference or provider id {args.ref[:60]!r}")
    if args.action == "cancel":
        import asyncio

        from grader.model.client import model_client

        provider_id = rows[0]["provider_batch_id"]
        if provider_id is None or rows[0]["status"] == "collected":
            raise GraderError("that batch is not at the provider (not sent yet, or collected)")

        async def cancel() -> None:
            async with model_client(settings) as client:
                await client.batches.cancel(provider_id)

        asyncio.run(cancel())
        _emit(
            args,
            {"cancelled": provider_id},
            f"asked the provider to cancel {provider_id}; the next grade-pending-batch run "
            "sends its jobs back to pending",
        )
        return 0
    lines = [
        f"{str(r['batch_ref'])[:8]}  {r['provider_batch_id'] or '(not sent)':<34} "
        f"{r['status']:<10} {r['jobs']:>6} jobs  {r['created_at']:%Y-%m-%d %H:%M}  "
        + ", ".join(f"{k} {v}" for k, v in sorted((r["job_statuses"] or {}).items()))
        for r in rows
    ]
    _emit(args, rows, "\n".join(lines) or "no batches")
    return 0


def _run_batch(args: argparse.Namespace, settings: Settings) -> int:
    """One grade-pending-batch run here: what the schedule does, now."""
    from essay_grader.runner import run_here
    from flows.batch import grade_pending_batch

    settings.require_model()
    summary = run_here(settings, lambda: grade_pending_batch(args.jobs))
    lines = [
        f"batch {c['batch']}: {c['status']}"
        + (
            f", {c['completed']} graded, {c['failed']} failed, {c['requeued']} sent back"
            if "completed" in c
            else f" ({c['provider_done']} of its requests done at the provider)"
        )
        for c in summary["collected"]
    ]
    if summary.get("skipped"):
        lines.append(summary["skipped"])
    sent = summary["sent"]
    lines.append(f"sent {sent['jobs']} job(s) as batch {sent['batch']}" if sent else "sent none")
    _emit(args, summary, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from reports.render import summary_lines
    from reports.weekly import generate

    report, folder = generate(settings, args.since, args.until, args.tz, args.out)
    files = sorted(p.name for p in folder.iterdir())
    _emit(
        args,
        {**report.summary, "folder": str(folder), "files": files},
        "\n".join([*summary_lines(report), "", f"written to {folder}/ ({len(files)} files)"]),
    )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader.demo import run_demo

    graded, data = run_demo(settings, _quiet if args.json else _say)
    if args.json:
        _emit(args, data, "")
    return 0 if graded else 1


def cmd_simulate_llm(args: argparse.Namespace, settings: Settings) -> int:
    from model_simulator import BatchConfig, SimulatorConfig, parse_fault_rates, serve_forever

    try:
        rates = parse_fault_rates(args.faults) if args.faults else {}
    except ValueError as exc:
        raise GraderError(f"--faults: {exc}") from None
    serve_forever(
        args.host,
        args.port,
        SimulatorConfig(
            latency_ms=args.latency_ms,
            fault_rates=rates,
            retry_after_seconds=args.retry_after,
            seed=args.seed,
            gullible=args.gullible,
            gullible_echo=args.gullible_echo,
        ),
        BatchConfig(seconds=args.batch_seconds, state_file=args.batch_state),
    )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from essay_grader.api import create_app
    from grader.store.api_keys import list_keys

    with _connect(settings) as conn:
        live = [k for k in list_keys(conn) if k["revoked_at"] is None]
    print(f"Serving the grading API on http://{args.host}:{args.port}/v1 (OpenAPI: /docs)")
    if not live:
        print("No API key yet: every request will get 401. Create one: grader api-key create NAME")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_api_key(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import api_keys

    with _connect(settings) as conn:
        if args.action == "create":
            if not args.name:
                raise GraderError("give the key a name: grader api-key create NAME")
            key, record = api_keys.create_key(conn, args.name)
            _emit(
                args,
                {**record, "key": key},
                f"{key}\n(shown once: store it now; it is sent as 'Authorization: Bearer <key>')",
            )
        elif args.action == "revoke":
            if not args.name:
                raise GraderError("name the key to revoke by its id or prefix")
            record = api_keys.revoke_key(conn, args.name)
            _emit(args, record, f"revoked {record['key_prefix']}… ({record['name']})")
        else:
            keys = api_keys.list_keys(conn)
            _emit(
                args,
                keys,
                "\n".join(
                    f"{k['key_prefix']}…  {k['name']:<24} created {k['created_at']:%Y-%m-%d}"
                    + (f", revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "")
                    for k in keys
                )
                or "no API keys",
            )
    return 0


def _cap(text: str) -> float | None:
    """An argparse type: a cap in USD, or 'none'."""
    if text.strip().lower() == "none":
        return None
    return _non_negative_float(text)


def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import spending

    with _connect(settings) as conn:
        for period in ("daily", "monthly"):
            value = getattr(args, period)
            if value is not False:
                spending.set_cap(conn, period, value)
        summary = spending.spending(conn)
    _emit(args, summary, spending.format_spending(summary))
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader import stack

    if settings.database_url:
        raise GraderError("DATABASE_URL is set: `grader up` runs the embedded PostgreSQL")
    started = time.monotonic()
    say = (lambda text: None) if args.json else print
    say("Starting the local stack (PostgreSQL, Prefect server and UI, work pool, worker)...")
    state = stack.up(
        settings,
        stack.StackOptions(host=args.host, port=args.port, pool=args.pool),
        say,
    )
    if args.json:
        _emit(args, {**state, "database_url": redact_url(state["database_url"])}, "")
        return 0
    print(f"Ready in {time.monotonic() - started:.1f}s.")
    print(f"  Prefect UI     {state['ui_url']}")
    print(f"  Prefect API    {state['api_url']}")
    print(f"  database       embedded PostgreSQL in {settings.pgdata}")
    print(f"  work pool      {state['pool']} (deployments from prefect.yaml)")
    if state["simulated"]:
        print("  model          the built-in simulator (no OPENAI_API_KEY): scores are SIMULATED")
    print(f"  logs           {settings.home / 'logs'}")
    print("grader commands in this GRADER_HOME now use this stack. Stop it with: grader down")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from essay_grader import stack

    stopped = stack.down(settings)
    _emit(
        args,
        {"stopped": stopped},
        f"stopped: {', '.join(stopped)}" if stopped else "nothing was running",
    )
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    described = settings.describe()
    _emit(args, described, "\n".join(f"{name:<20} {value}" for name, value in described.items()))
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.embedded import stop_embedded

    if settings.database_url:
        raise GraderError("DATABASE_URL is set: the grader does not manage that server")
    stopped = stop_embedded(settings)
    print(f"stopped the embedded PostgreSQL in {settings.pgdata}" if stopped else "not running")
    return 0


# --- parser -------------------------------------------------------------------------------


def _at_least(minimum: float, cast: type = int) -> Callable[[str], Any]:
    """An argparse type: a number of type `cast`, no smaller than `minimum`."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _at_least(1)
_non_negative_float = _at_least(0.0, float)


def _probability(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{value} must be at most 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print machine-readable JSON")

    parser = _Parser(
        prog="grader",
        description="Grade essays in the background with Prefect, PostgreSQL and an "
        "OpenAI-compatible model.",
        epilog="Settings come from the environment: DATABASE_URL (default: an embedded "
        "PostgreSQL in ~/.grader), OPENAI_API_KEY, OPENAI_BASE_URL, GRADER_MODEL.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser("migrate", parents=[output], help="apply pending database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("submit", parents=[output], help="store an essay; prints its submission id")
    p.add_argument("file", help="UTF-8 text file with the essay ('-' reads standard input)")
    p.add_argument("--student-ref", help="your reference for the student (never sent to the model)")
    p.add_argument("--rubric", help="rubric file (.toml or .json); default: the built-in rubric")
    p.set_defaults(func=cmd_submit)

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
        type=_non_negative_float,
        default=600.0,
        help="seconds to wait with --wait (default 600)",
    )
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("status", parents=[output], help="show a grading job and its grade")
    p.add_argument("task_id")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("run-pending", parents=[output], help="grade pending jobs in a batch")
    p.add_argument("--limit", type=_positive_int, default=100, help="most jobs to grade (100)")
    p.add_argument("--concurrency", type=_positive_int, default=10, help="jobs graded at once (10)")
    p.set_defaults(func=cmd_run_pending)

    p = sub.add_parser("cancel", parents=[output], help="cancel a pending or processing job")
    p.add_argument("task_id")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser(
        "reap", parents=[output], help="return the jobs of lost workers (expired leases)"
    )
    p.set_defaults(func=cmd_reap)

    p = sub.add_parser("prune", parents=[output], help="delete old finished jobs")
    p.add_argument("--older-than", type=_positive_int, required=True, metavar="DAYS")
    p.add_argument("--with-grades", action="store_true", help="delete their grades too")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("jobs", parents=[output], help="monitoring: recent, failed, stats")
    p.add_argument("view", choices=["recent", "failed", "stats"])
    p.add_argument("--limit", type=_positive_int, default=20, help="rows to show (20)")
    p.add_argument("--days", type=_positive_int, default=7, help="window for stats (7)")
    p.set_defaults(func=cmd_jobs)

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

    evaluate = sub.add_parser(
        "evaluate", help="check the model's grades against human graders"
    ).add_subparsers(dest="evaluate_command", required=True, metavar="ACTION")
    p = evaluate.add_parser(
        "import", parents=[output], help="import a human-scored set (CSV or JSONL)"
    )
    p.add_argument("file")
    p.add_argument("--rubric", help="rubric file (.toml or .json); default: the default rubric")
    p.add_argument("--name", help="the set's name (default: the file's name)")
    p.add_argument(
        "--map",
        help="FIELD=COLUMN,... where the file names columns its own way; fields: id, essay, "
        "essay_path, each criterion key, total, second_<criterion|total>",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every score by this first (2: half points to whole ones)",
    )
    p.set_defaults(func=cmd_evaluate_import)
    p = evaluate.add_parser("list", parents=[output], help="list the imported sets")
    p.set_defaults(func=cmd_evaluate_list)
    p = evaluate.add_parser(
        "run", parents=[output], help="grade a set and report agreement with its human scores"
    )
    p.add_argument("set")
    p.add_argument("--label", help="a name for this run (default: the time)")
    p.add_argument("--model", help="the model to grade with (default: GRADER_MODEL)")
    p.add_argument("--concurrency", type=_positive_int, default=10, help="essays at once (10)")
    p.add_argument(
        "--timeout", type=_non_negative_float, default=3600.0, help="seconds to wait (3600)"
    )
    for name, kind, text in (
        ("off-by-one", _probability, "probability a score is one point off"),
        (
            "anchored-off-by-one",
            _probability,
            "the same when the prompt carries anchor essays (default: as --simulate-off-by-one)",
        ),
        ("bias", int, "points added to every score"),
        ("random", _probability, "probability a score is random"),
    ):
        p.add_argument(f"--simulate-{name}", type=kind, help=f"simulator only: {text}")
    p.add_argument("--seed", type=int, default=0, help="simulator only: seed of its noise (0)")
    p.add_argument(
        "--samples",
        type=_positive_int,
        help="grade each essay K times and keep the median (default GRADER_SAMPLES, 1)",
    )
    p.add_argument(
        "--anchors",
        help="scored example essays for the prompt: TOML/JSON {anchors = [...]} or CSV/JSONL",
    )
    p.set_defaults(func=cmd_evaluate_run)
    p = evaluate.add_parser("compare", parents=[output], help="two finished runs side by side")
    p.add_argument("run_a", help="a run's label or the start of its id")
    p.add_argument("run_b")
    p.set_defaults(func=cmd_evaluate_compare)

    review = sub.add_parser(
        "review", help="teacher review: the queue, a grade, accept or override"
    ).add_subparsers(dest="review_command", required=True, metavar="ACTION")
    p = review.add_parser("list", parents=[output], help="grades waiting for review (a page)")
    p.add_argument("--state", default="needs_review", choices=["needs_review", "reviewed", "auto"])
    p.add_argument("--reason", help="only this reason (possible_prompt_injection, ...)")
    p.add_argument("--rubric", help="only grades by the rubric of this name")
    p.add_argument("--limit", type=_positive_int, default=50, help="grades per page (50)")
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
            type=_positive_int,
            help="the version you reviewed: refused if the grade changed since",
        )
        p.set_defaults(func=cmd_review_decide, action=action)

    p = sub.add_parser("export", help="the gradebook: every grade as CSV or JSONL")
    p.add_argument("--since", help="grades made since this date (UTC) or ISO date-time")
    p.add_argument("--rubric", help="only grades by the rubric of this name")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--out", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

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

    p = sub.add_parser("batch", parents=[output], help="batches sent to the provider's Batch API")
    p.add_argument(
        "action",
        choices=["run", "list", "show", "cancel"],
        help="run: collect finished batches and send the pending jobs as a new one",
    )
    p.add_argument("ref", nargs="?", help="a batch's reference (its start) or provider id")
    p.add_argument("--limit", type=_positive_int, default=20, help="batches to list (20)")
    p.add_argument(
        "--jobs", type=_positive_int, default=1000, help="run: jobs to send at most (1000)"
    )
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("demo", parents=[output], help="grade the sample essays end to end")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate-llm", help="serve a simulated OpenAI-compatible model on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--latency-ms", type=_non_negative_float, default=0.0)
    p.add_argument(
        "--faults",
        help="fault rates, e.g. 429=0.1,500=0.05,drop=0.01,hang=0.01,truncate=0.01,malformed=0.01 "
        "(also overscore: every number in the answer out of bounds)",
    )
    p.add_argument(
        "--retry-after",
        type=_non_negative_float,
        default=1.0,
        help="Retry-After seconds on simulated 429s (1)",
    )
    p.add_argument("--seed", type=int, help="seed for the fault dice")
    p.add_argument(
        "--gullible",
        type=_probability,
        default=0.0,
        help="probability of obeying an essay that asks for a score, giving every criterion its "
        "maximum; with it, scores come from reading the essay (0: off)",
    )
    p.add_argument(
        "--gullible-echo",
        type=_probability,
        default=0.0,
        help="probability an obeying answer quotes the request in its justifications (0)",
    )
    p.add_argument(
        "--batch-seconds",
        type=_non_negative_float,
        default=0.0,
        help="Batch API: seconds from a batch's creation to its completion (0)",
    )
    p.add_argument(
        "--batch-state",
        metavar="FILE",
        help="Batch API: keep files and batches in FILE, across restarts (default: in memory)",
    )
    p.set_defaults(func=cmd_simulate_llm)

    p = sub.add_parser(
        "up", parents=[output], help="start the local stack: PostgreSQL, Prefect UI, worker"
    )
    p.add_argument("--host", default="127.0.0.1", help="Prefect server address (127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=4200, help="Prefect UI port (4200)")
    p.add_argument("--pool", default="grading", help="work pool name (grading)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", parents=[output], help="stop everything `grader up` started")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("serve", help="serve the HTTP API for web apps")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=8000, help="port (8000)")
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("api-key", parents=[output], help="create, list or revoke API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?", help="a name for a new key; the id or prefix to revoke")
    p.set_defaults(func=cmd_api_key)

    p = sub.add_parser(
        "budget", parents=[output], help="show spending; set daily and monthly caps in USD"
    )
    p.add_argument(
        "--daily", type=_cap, default=False, metavar="USD", help="daily cap ('none' removes it)"
    )
    p.add_argument(
        "--monthly", type=_cap, default=False, metavar="USD", help="monthly cap ('none' removes it)"
    )
    p.set_defaults(func=cmd_budget)

    p = sub.add_parser(
        "settings", parents=[output], help="show the settings in effect (secrets redacted)"
    )
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("db", help="manage the embedded PostgreSQL")
    p.add_argument("action", choices=["stop"])
    p.set_defaults(func=cmd_db)
    return parser


def _with_running_stack(settings: Settings) -> Settings:
    """Points this command at the stack `grader up` started in this GRADER_HOME, if any,
    unless the environment names a Prefect API or a model already."""
    from essay_grader.stack import running_stack

    state = running_stack(settings)
    if state is None:
        return settings
    if not settings.prefect_api_url:
        settings = replace(settings, prefect_api_url=state["api_url"])
    if state["simulated"] and settings.simulated:
        settings = replace(settings, openai_base_url=state["model_url"])
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import psycopg

    from essay_grader.prefect_setup import configure_prefect
    from grader import handoff

    configure_prefect()  # offline and quiet, before anything imports Prefect
    try:
        return args.func(args, _with_running_stack(Settings.from_env()))
    except GraderError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as exc:
        from grader.errors import first_line

        print(f"grader: error: database unavailable: {first_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (`grader jobs recent | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        # A job handed to Prefect by this command is handed off before the command exits (not
        # at interpreter exit, when importing Prefect fails). Bounded: the hand-off's own call
        # to Prefect times out, and a failed hand-off leaves the job pending for grade-pending.
        handoff.drain()


if __name__ == "__main__":
    sys.exit(main())
