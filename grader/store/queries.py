"""The named queries: every SQL statement the grader runs lives in grader/store/sql/*.sql under a
`-- name: NAME` line, and Python code asks for it by name.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _queries() -> dict[str, str]:
    text = resources.files("grader.store").joinpath("sql/queries.sql").read_text(encoding="utf-8")
    parts = _QUERY_NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    """The SQL of a named query in grader/sql/queries.sql."""
    return _queries()[name]
