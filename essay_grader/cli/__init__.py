"""The `grader` command line: `main(argv)` and the parser, assembled from one module per
command group (jobs, evaluate, review, batch, exports, stack, admin).

Every command that prints data takes --json. Expected mistakes (bad ids, unreadable files, an
unreachable database) print one line on stderr and exit 1; usage errors exit 2.

Heavy modules (psycopg, pydantic, openai, prefect, pandas, matplotlib, fastapi) are imported by
the commands that need them, so that `grader --help` and `grader status` start at once: the
command modules import only the standard library and the errors at the top, and `--help` does not
read the settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from essay_grader.cli import admin, batch, evaluate, exports, jobs, review, stack
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.settings import Settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# The commands in the order `grader --help` lists them.
_COMMANDS = (
    admin.add_migrate,
    jobs.add_submit,
    jobs.add_grade,
    jobs.add_status,
    jobs.add_run_pending,
    jobs.add_cancel,
    jobs.add_reap,
    jobs.add_prune,
    jobs.add_jobs,
    exports.add_report,
    evaluate.add_evaluate,
    review.add_review,
    exports.add_export,
    review.add_regrade,
    batch.add_batch,
    stack.add_demo,
    stack.add_simulate_llm,
    stack.add_up,
    stack.add_down,
    stack.add_serve,
    admin.add_api_key,
    admin.add_budget,
    admin.add_settings,
    admin.add_db,
)


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
    for add in _COMMANDS:
        add(sub, output)
    return parser


def _with_running_stack(settings: Settings) -> Settings:
    """Points this command at the stack `grader up` started in this GRADER_HOME, if any,
    unless the environment names a Prefect API or a model already."""
    from dataclasses import replace

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
    from grader.settings import Settings

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
