"""A job as callers see it (`JobStatus`), the statuses it can end in and the ways it can be
graded. Plain dataclasses, not Pydantic models: `grader status` reads them, and a command that
prints a status should not pay for importing Pydantic. Values computed from the fields (a job's
duration) are properties, listed in COMPUTED, and included by `to_dict()`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from grader.grading.grade import Grade

GRADING_MODES = ("now", "batch")  # at once, or in the provider's next batch (half the price)
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class JobStatus:
    """A job as a caller sees it: status (pending, processing, completed, failed or
    cancelled), timestamps, attempts, error, why a pending job waits (a spending cap), and,
    once completed, its grade."""

    COMPUTED: ClassVar[tuple[str, ...]] = ("duration_seconds",)

    task_id: UUID
    status: str
    submission_id: UUID | None
    attempts: int
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    completed_at: datetime | None
    flow_run_id: UUID | None
    paused_reason: str | None = None
    mode: str = "now"  # or "batch": graded by the next grade-pending-batch run
    provider_batch_id: str | None = None  # the provider batch that holds or held the job
    grade: Grade | None = field(default=None)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.created_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ids and times as strings, the grade with its computed values."""
        data = {
            **asdict(self),
            "duration_seconds": self.duration_seconds,
            "grade": self.grade.to_dict() if self.grade else None,
        }
        return json.loads(json.dumps(data, default=_json_value))


def _json_value(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
