"""The essay grader's top layer: the grading service, the Python client, the `grader` command
line, the HTTP API, the local stack and the demo. Settings and resources are built here, at the
edges, and passed down into the core library (`grader`) and the flows.

    from essay_grader import submit_essay, start_grading_job, check_grading_status
    from essay_grader import grade_submission, GradingService

The service and the client are imported on first use, so that `grader --help` does not pay for
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from essay_grader.client import (
        cancel_grading_job,
        check_grading_status,
        grade_submission,
        start_grading_job,
        submit_essay,
        wait_for_grade,
    )
    from essay_grader.service import GradingService

__all__ = [
    "GradingService",
    "cancel_grading_job",
    "check_grading_status",
    "grade_submission",
    "start_grading_job",
    "submit_essay",
    "wait_for_grade",
]


def __getattr__(name: str) -> Any:
    if name == "GradingService":
        from essay_grader.service import GradingService

        return GradingService
    if name in __all__:
        from essay_grader import client

        return getattr(client, name)
    raise AttributeError(f"module 'essay_grader' has no attribute {name!r}")
