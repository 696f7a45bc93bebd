"""The Python client: submit an essay, start a grading job, check on it, wait for the grade, or
grade a submission from start to finish, as functions of one default grading service built from
the environment on first use. They mirror the old web frontend's startGradingJob,
checkGradingStatus and gradeSubmission.

    from essay_grader import submit_essay, start_grading_job, wait_for_grade

With settings of your own (another database, a connection pool), make an
`essay_grader.service.GradingService` and call the same methods on it.
"""

from __future__ import annotations

from uuid import UUID

from essay_grader.service import GradingService
from grader.jobs import JobStatus

_default: GradingService | None = None


def default_service() -> GradingService:
    """The service the module-level functions use: built from the environment once."""
    global _default
    if _default is None:
        _default = GradingService()
    return _default


def submit_essay(*args, **kwargs) -> UUID:
    """`GradingService.submit_essay` on the default service."""
    return default_service().submit_essay(*args, **kwargs)


def start_grading_job(*args, **kwargs) -> UUID:
    """`GradingService.start_grading_job` on the default service."""
    return default_service().start_grading_job(*args, **kwargs)


def check_grading_status(*args, **kwargs) -> JobStatus:
    """`GradingService.check_grading_status` on the default service."""
    return default_service().check_grading_status(*args, **kwargs)


def cancel_grading_job(*args, **kwargs) -> JobStatus:
    """`GradingService.cancel_grading_job` on the default service."""
    return default_service().cancel_grading_job(*args, **kwargs)


def wait_for_grade(*args, **kwargs) -> JobStatus:
    """`GradingService.wait_for_grade` on the default service."""
    return default_service().wait_for_grade(*args, **kwargs)


def grade_submission(*args, **kwargs) -> JobStatus:
    """`GradingService.grade_submission` on the default service."""
    return default_service().grade_submission(*args, **kwargs)
