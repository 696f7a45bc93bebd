"""`grader batch`: the batches sent to the provider's Batch API (run, list, show, cancel)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import positive_int
from essay_grader.cli.output import emit
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.settings import Settings


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import provider_batches
    from grader.store.connections import connect

    if args.action == "run":
        return _run_batch(args, settings)
    if args.action != "list" and not args.ref:
        raise GraderError(f"batch {args.action} needs the batch's reference or provider id")
    with connect(settings) as conn:
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
        emit(
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
    emit(args, rows, "\n".join(lines) or "no batches")
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
    emit(args, summary, "\n".join(lines))
    return 0


def add_batch(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("batch", parents=[output], help="batches sent to the provider's Batch API")
    p.add_argument(
        "action",
        choices=["run", "list", "show", "cancel"],
        help="run: collect finished batches and send the pending jobs as a new one",
    )
    p.add_argument("ref", nargs="?", help="a batch's reference (its start) or provider id")
    p.add_argument("--limit", type=positive_int, default=20, help="batches to list (20)")
    p.add_argument(
        "--jobs", type=positive_int, default=1000, help="run: jobs to send at most (1000)"
    )
    p.set_defaults(func=cmd_batch)
