"""The checks on what goes in: an essay that can be graded, a student reference that can be
stored, and text PostgreSQL can store.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
)

from grader.errors import InvalidEssayError, InvalidInputError

# What PostgreSQL cannot store in text: NUL, and lone surrogates (undecodable bytes that Python
# smuggles through as U+DC80.., or a JSON "\ud800" escape).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("contains a NUL character or invalid Unicode")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
MAX_STUDENT_REF_CHARS = 200


def check_student_ref(student_ref: str | None) -> str | None:
    """The student reference if it can be stored; InvalidInputError otherwise."""
    if student_ref is None:
        return None
    if len(student_ref) > MAX_STUDENT_REF_CHARS or _UNSTORABLE.search(student_ref):
        raise InvalidInputError(
            f"the student reference must be at most {MAX_STUDENT_REF_CHARS} characters of text"
        )
    return student_ref


def check_essay(essay: str, max_chars: int) -> str:
    """The essay if it can be graded; InvalidEssayError with the reason otherwise."""
    if not essay.strip():
        raise InvalidEssayError("the essay is empty")
    if "\x00" in essay:
        raise InvalidEssayError("the essay contains NUL bytes; it looks like binary data, not text")
    if _UNSTORABLE.search(essay):
        raise InvalidEssayError("the essay is not valid Unicode text")
    if len(essay) > max_chars:
        raise InvalidEssayError(
            f"the essay has {len(essay):,} characters; the limit is {max_chars:,} "
            "(GRADER_MAX_ESSAY_CHARS)"
        )
    return essay
