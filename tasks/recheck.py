"""The recheck step of a grade (GRADER_RECHECK, grader/quality/recheck.py): the justification
check, and for a suspect grade one more call-OpenAI task run on the essay with the passages that
might address the grader set aside. The synchronous flows and a batch line run it alike.
"""

from __future__ import annotations

from dataclasses import replace

from prefect import Task

from grader.context import RunContext
from grader.grading.grade import Grade
from grader.grading.pricing import call_cost
from grader.grading.scoring import parse_reply
from grader.model.failures import describe_failure
from grader.quality import recheck
from grader.review import add_reasons
from grader.store.jobs import Submission


async def recheck_grade(
    ctx: RunContext, call_openai: Task, submission: Submission, grade: Grade
) -> Grade:
    """The grade with the recheck's reasons for review added, and the cost of its model call;
    the scores stay the first grading's, and persist-result stores the grade once, as ever."""
    if ctx.settings.recheck == "off":
        return grade
    neutral = recheck.neutralise(submission.essay)
    reasons = [recheck.justification_reason(grade, neutral)]
    if neutral.passages and recheck.is_suspect(grade, ctx.settings):
        try:
            reply = await call_openai(ctx, replace(submission, essay=neutral.text))
            rechecked = parse_reply(reply, submission.rubric)
        except Exception as exc:  # a failed check sends the grade to a person, not to failure
            reasons.append(recheck.failed_reason(describe_failure(exc), neutral))
        else:
            cost = call_cost(
                rechecked.model, rechecked.prompt_tokens, rechecked.completion_tokens, ctx.prices
            )
            grade = recheck.with_recheck_cost(grade, replace(rechecked, cost_usd=cost))
            reasons.append(recheck.differs_reason(grade, rechecked, neutral, ctx.settings))
    return add_reasons(grade, [r for r in reasons if r is not None])
