"""Background essay grading: store a job, grade it in a Prefect flow, poll or wait for the grade.

from grader import submit_essay, start_grading_job, check_grading_status, grade_submission
"""

from grader.client import (
    cancel_grading_job,
    check_grading_status,
    grade_submission,
    start_grading_job,
    submit_essay,
    wait_for_grade,
)

__all__ = [
    "cancel_grading_job",
    "check_grading_status",
    "grade_submission",
    "start_grading_job",
    "submit_essay",
    "wait_for_grade",
]
