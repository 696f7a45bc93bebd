"""`grader evaluate`: import a human-scored set, grade it, and compare the model's grades with
the human ones (import, list, run, compare)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import non_negative_float, positive_int, probability
from essay_grader.cli.output import emit
from grader.errors import ConfigError, GraderError

if TYPE_CHECKING:
    from grader.settings import Settings


def cmd_evaluate_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from grader.evaluation import ScoredSet, parse_mapping
    from grader.grading.rubric import load_rubric
    from grader.store import evaluation
    from grader.store.connections import connect

    rubric = load_rubric(args.rubric)
    path = Path(args.file)
    scored = ScoredSet(path, rubric, parse_mapping(args.map), args.scale)
    name = args.name or path.stem
    with connect(settings) as conn:
        items = evaluation.import_set(conn, scored, rubric, name, path.name)
    result = {
        "set": name,
        "items": items,
        "rubric": rubric.name,
        "targets": list(scored.layout.targets),
        "second_rater": list(scored.layout.second),
    }
    emit(
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
    from grader.store.connections import connect

    with connect(settings) as conn:
        sets = evaluation.list_sets(conn)
    lines = [
        f"{s['name']:<30} {s['items']:>7} essays  {s['runs']:>3} runs  {s['rubric']}" for s in sets
    ]
    emit(args, sets, "\n".join(lines) or "no evaluation sets (import one: grader evaluate import)")
    return 0


def cmd_evaluate_run(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack
    from dataclasses import replace
    from pathlib import Path

    from essay_grader.runner import run_here
    from flows.evaluation import evaluate_agreement
    from grader.evaluation import load_anchors
    from grader.store import evaluation
    from grader.store.connections import connect

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

        with connect(settings) as conn:
            set_row = evaluation.find_set(conn, args.set)
        rubric = parse_rubric(set_row["rubric"], args.set)
        anchors = load_anchors(Path(args.anchors), rubric)
    with ExitStack() as stack:
        if settings.simulated:
            from model_simulator import LLMSimulator, SimulatorConfig

            with connect(settings) as conn:
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
    emit(
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
    from grader.store.connections import connect
    from reports.agreement import compare

    with connect(settings) as conn:
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
    emit(
        args,
        {"a": runs[0]["metrics"], "b": runs[1]["metrics"], "table": table.to_dict("records")},
        "\n".join(lines),
    )
    return 0


def add_evaluate(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
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
    p.add_argument("--concurrency", type=positive_int, default=10, help="essays at once (10)")
    p.add_argument(
        "--timeout", type=non_negative_float, default=3600.0, help="seconds to wait (3600)"
    )
    for name, kind, text in (
        ("off-by-one", probability, "probability a score is one point off"),
        (
            "anchored-off-by-one",
            probability,
            "the same when the prompt carries anchor essays (default: as --simulate-off-by-one)",
        ),
        ("bias", int, "points added to every score"),
        ("random", probability, "probability a score is random"),
    ):
        p.add_argument(f"--simulate-{name}", type=kind, help=f"simulator only: {text}")
    p.add_argument("--seed", type=int, default=0, help="simulator only: seed of its noise (0)")
    p.add_argument(
        "--samples",
        type=positive_int,
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
