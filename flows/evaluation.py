"""The evaluate-agreement flow: grades a human-scored set through the production path and
measures how far the model agrees with the humans.

It creates the run and one pending job per essay (tagged with the run, so production
monitoring and the weekly report leave them out), grades them with the same claim and four
tasks as grade-pending (a listener or a sweep may take some: the flow waits for every job of
the run to finish), then computes the agreement figures, writes the report folder, stores the
summary on the run (for `grader evaluate compare`) and publishes it as an artifact.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run

from grader.context import open_run_context
from grader.errors import GraderError
from grader.settings import settings_for_run
from grader.store import evaluation
from grader.store.connections import connect
from reports import agreement
from tasks.grade_claimed import grade_as_claimed, release_on_crash

WAIT_POLL_SECONDS = 1.0


@flow(name="evaluate-agreement", on_crashed=[release_on_crash])
async def evaluate_agreement(
    set_name: str,
    label: str | None = None,
    model: str | None = None,
    concurrency: int = 10,
    timeout_minutes: float = 60.0,
    samples: int | None = None,
    anchors: list[dict[str, Any]] | None = None,
    simulator_noise: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Grades every essay of `set_name` with `model` (default GRADER_MODEL) and reports the
    agreement with its human scores. `samples`: gradings per essay, the median kept (default
    GRADER_SAMPLES); `anchors`: scored example essays for the prompt ({essay, scores,
    justification}, as `grader evaluate run --anchors` reads them). `simulator_noise` only
    records what the caller told the simulator (it never reaches a real model)."""
    if not 1 <= concurrency <= 1000 or timeout_minutes <= 0:
        raise GraderError("concurrency must be between 1 and 1000 and timeout_minutes above 0")
    if samples is not None and not 1 <= samples <= 15:
        raise GraderError("samples must be between 1 and 15")
    settings = settings_for_run()
    if model:
        settings = replace(settings, model=model)
    with connect(settings) as conn:
        set_row = evaluation.find_set(conn, set_name)
        run_settings = {
            "samples": samples or settings.samples,
            "anchors": len(anchors or []),
            **({"simulator_noise": simulator_noise} if simulator_noise else {}),
        }
        label = label or time.strftime("%Y%m%d-%H%M%S")
        run = evaluation.create_run(
            conn, set_row, label, settings.model, run_settings, anchors, samples
        )

    async with open_run_context(settings, min(concurrency + 1, 20), flow_run.id) as ctx:
        batch = max(1, min(concurrency // 4, 10))
        await grade_as_claimed(ctx, concurrency, run["jobs"], batch, None, run["run_id"])

    deadline = time.monotonic() + timeout_minutes * 60
    with connect(settings) as conn:
        while (progress := evaluation.run_progress(conn, run["run_id"]))["unfinished"]:
            if time.monotonic() > deadline:
                raise GraderError(
                    f"evaluation run {label}: {progress['unfinished']} jobs still unfinished "
                    f"after {timeout_minutes:g} minutes"
                )
            await asyncio.sleep(WAIT_POLL_SECONDS)
        stored = evaluation.find_run(conn, str(run["run_id"]))
        result = agreement.compute(stored, *evaluation.run_results(conn, stored))
        folder = agreement.write_report(result, settings.reports_dir)
        evaluation.finish_run(conn, run["run_id"], result.summary)

    warning = agreement.simulated_warning(result.summary)
    await acreate_markdown_artifact(
        key=f"evaluation-{str(run['run_id'])[:8]}",
        markdown="\n".join(
            [
                f"# Agreement with human graders: {set_name}, run {label}",
                "",
                *([f"> **{warning}**", ""] if warning else []),
                agreement.headline(result.summary),
                "",
                f"Report: `{folder}`",
            ]
        ),
        description=f"Agreement with human graders, run {label}",
    )
    return {**result.summary, "folder": str(folder)}
