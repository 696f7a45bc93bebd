"""The named queries: every SQL statement the grader runs lives in grader/store/sql/*.sql, one file
per table family, under a `-- name: NAME` line, and Python code asks for it by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def named_queries(files: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{name: SQL} of the named queries in (file name, text) pairs; the text before a file's first
    name is its preamble. ValueError for a name defined twice, in one file or in two."""
    queries: dict[str, str] = {}
    origin: dict[str, str] = {}
    for file, text in files:
        parts = _QUERY_NAME.split(text)
        # parts: [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} is defined in both {origin[name]} and {file}")
            queries[name] = body.strip()
            origin[name] = file
    return queries


@cache
def _queries() -> dict[str, str]:
    folder = resources.files("grader.store").joinpath("sql")
    files = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))
    return named_queries((f, folder.joinpath(f).read_text(encoding="utf-8")) for f in files)


def query(name: str) -> str:
    """The SQL of a named query in grader/store/sql/*.sql."""
    return _queries()[name]
