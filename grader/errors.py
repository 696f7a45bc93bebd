"""The errors a user of the grader can meet, each with a message fit to print as one line.

The CLI prints `str(error)` of any GraderError and exits non-zero; anything else is a bug.
Messages never contain essay text or student references.
"""


class GraderError(Exception):
    """An expected failure with a message for people."""


class ConfigError(GraderError):
    """A setting is missing or malformed."""


class NotFoundError(GraderError):
    """An id names nothing stored."""


class InvalidInputError(GraderError):
    """Input that cannot be stored as it is (a malformed student reference, say)."""


class InvalidEssayError(InvalidInputError):
    """The essay cannot be graded as it is (empty, too long, not text). Never retried."""


class RubricError(GraderError):
    """A rubric file is missing or malformed."""


class MigrationError(GraderError):
    """The database schema cannot be brought up to date safely."""


class ModelOutputError(GraderError):
    """The model answered, but not with a usable grade. Never retried: the same prompt
    would most likely get the same answer."""


class GradingFailedError(GraderError):
    """A grading job ended failed or cancelled."""


class GradingTimeoutError(GraderError):
    """A caller stopped waiting for a grade."""


class ConflictError(GraderError):
    """Someone changed the record since the caller read it (a second review decision)."""


class LeaseLostError(Exception):
    """This attempt no longer owns its job (cancelled, or taken over after its lease expired);
    whatever it computed is discarded."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
