"""Human-scored sets, read: the file of a school's own graders (CSV or JSONL) as checked rows of
an id, an essay and one or two raters' scores, and anchor essays for a run.

A set file is streamed and validated row by row; grader/store/evaluation.py writes the rows with
COPY in one transaction (a bad row imports nothing) and runs the evaluations: one pending grading
job per essay of the set, tagged with the run, so the essays go through the same flow and tasks
as production grading; the agreement metrics are computed by reports.agreement.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.errors import InvalidInputError, first_line
from grader.grading.essay import storable_text

if TYPE_CHECKING:
    from grader.grading.rubric import Rubric

TOTAL = "total"  # the holistic total, beside the rubric's criterion keys
SECOND = "second_"  # a second rater's score of a target: second_thesis, second_total
MAX_ESSAY_CHARS = 100_000


def parse_mapping(spec: str | None) -> dict[str, str]:
    """ "essay=essay_text,thesis=rater1_thesis" -> {"essay": "essay_text", "thesis": ...}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InvalidInputError(f"--map entries are FIELD=COLUMN, got {part!r}")
        mapping[field.strip()] = column.strip()
    return mapping


@dataclass(frozen=True)
class Layout:
    """Which column of the file holds each field we read."""

    id: str
    essay: str | None
    essay_path: str | None
    targets: dict[str, str]  # criterion key or "total" -> column (first rater)
    second: dict[str, str]  # criterion key or "total" -> column (second rater)


def _layout(header: list[str], rubric: Rubric, mapping: dict[str, str]) -> Layout:
    keys = [c.key for c in rubric.criteria] + [TOTAL]
    known = {"id", "essay", "essay_path", *keys, *(SECOND + k for k in keys)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InvalidInputError(
            f"--map names unknown field {unknown[0]!r}: fields are id, essay, essay_path, the "
            f"rubric's criteria ({', '.join(keys[:-1])}), total, and second_<criterion|total>"
        )
    missing = [mapping[f] for f in mapping if mapping[f] not in header]
    if missing:
        raise InvalidInputError(f"missing column {missing[0]!r} (the file has: {_cols(header)})")

    def column(field: str) -> str | None:
        name = mapping.get(field, field)
        return name if name in header else None

    id_column = column("id")
    if id_column is None:
        raise InvalidInputError(
            f"missing column 'id' (the file has: {_cols(header)}; map it with --map id=COLUMN)"
        )
    essay, essay_path = column("essay"), column("essay_path")
    if essay is None and essay_path is None:
        raise InvalidInputError(
            f"missing column 'essay' or 'essay_path' (the file has: {_cols(header)})"
        )
    targets = {k: c for k in keys if (c := column(k))}
    if not targets:
        raise InvalidInputError(
            f"no score column: expected one of {', '.join(keys)} (or map them with --map)"
        )
    second = {k: c for k in keys if (c := column(SECOND + k))}
    return Layout(id_column, essay, essay_path, targets, second)


def _cols(header: list[str]) -> str:
    return ", ".join(header[:12]) + (" ..." if len(header) > 12 else "")


def _rows(path: Path) -> Iterator[tuple[int, list[str] | None, dict[str, Any]]]:
    """(row number, header or None, row) from CSV or JSONL, streamed; the header comes with
    the first row (for JSONL: the first object's keys)."""
    suffix = path.suffix.lower()
    try:
        # bytes that are not UTF-8 become lone surrogates, found below with their row and column
        handle = path.open(encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            if suffix == ".csv":
                reader = csv.DictReader(handle)
                header = list(reader.fieldnames or [])
                if not header:
                    raise InvalidInputError(f"{path} is empty")
                for number, row in enumerate(reader, start=2):
                    if None in row:  # more cells than the header has
                        raise InvalidInputError(f"row {number}: more cells than columns")
                    yield number, header, _decoded(number, row)
            elif suffix in (".jsonl", ".ndjson"):
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InvalidInputError(f"row {number}: not JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise InvalidInputError(f"row {number}: not a JSON object")
                    yield number, list(row), _decoded(number, row)
            else:
                raise InvalidInputError(f"{path} must be a .csv or .jsonl file")
        except csv.Error as exc:
            raise InvalidInputError(f"{path} is not valid CSV: {exc}") from None


_UNDECODED = re.compile("[\udc80-\udcff]")


def _decoded(number: int, row: dict[str, Any]) -> dict[str, Any]:
    for column, value in row.items():
        if _UNDECODED.search(str(column)) or (isinstance(value, str) and _UNDECODED.search(value)):
            raise InvalidInputError(f"row {number}, column {column!r}: not UTF-8 text")
    return row


def _score(
    value: Any, number: int, column: str, top: int, optional: bool, scale: float
) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise InvalidInputError(f"row {number}, column {column!r}: no score")
    try:
        score = float(value) * scale
        if not score.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"row {number}, column {column!r}: score {str(value)[:20]!r} is not a whole number"
            + (f" (times {scale:g})" if scale != 1 else "")
        ) from None
    if not 0 <= score <= top:
        raise InvalidInputError(
            f"row {number}, column {column!r}: score {int(score)} is outside 0-{top}"
        )
    return int(score)


def _essay(row: dict[str, Any], layout: Layout, number: int, base: Path) -> str:
    if layout.essay is not None and row.get(layout.essay) not in (None, ""):
        text = row[layout.essay]
        column = layout.essay
    elif layout.essay_path is not None and row.get(layout.essay_path):
        column = layout.essay_path
        file = base / str(row[column])
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"row {number}, column {column!r}: {file} is not UTF-8"
            ) from None
        except OSError as exc:
            raise InvalidInputError(
                f"row {number}, column {column!r}: cannot read {file} ({exc.strerror or exc})"
            ) from None
    else:
        raise InvalidInputError(
            f"row {number}, column {layout.essay or layout.essay_path!r}: empty essay"
        )
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"row {number}, column {column!r}: empty essay")
    try:
        storable_text(text)
        if len(text) > MAX_ESSAY_CHARS:
            raise ValueError
    except ValueError:
        raise InvalidInputError(
            f"row {number}, column {column!r}: the essay is not storable text of at most "
            f"{MAX_ESSAY_CHARS:,} characters"
        ) from None
    return text


@dataclass(frozen=True)
class ScoredEssay:
    """One checked row of a human-scored set: its id, essay, and scores by target (criterion key
    or "total"), the second rater's where the file has them."""

    item_id: str
    essay: str
    human: dict[str, int]
    second: dict[str, int]


class ScoredSet:
    """A human-scored set file read as ScoredEssay rows, streamed and checked row by row
    (InvalidInputError naming the row and column). Scores are multiplied by `scale` (2 turns half
    points into whole ones) and must then be whole numbers within the rubric's bounds. `layout`
    is known once the first row has been read."""

    def __init__(
        self, path: Path, rubric: Rubric, mapping: dict[str, str], scale: float = 1.0
    ) -> None:
        self.path, self.rubric, self.mapping, self.scale = path, rubric, mapping, scale
        self.layout: Layout | None = None

    def __iter__(self) -> Iterator[ScoredEssay]:
        rubric, scale = self.rubric, self.scale
        maxima = {c.key: c.max_points for c in rubric.criteria} | {TOTAL: rubric.max_score}
        seen: set[str] = set()
        for number, header, row in _rows(self.path):
            if self.layout is None:
                self.layout = _layout(header, rubric, self.mapping)
            layout = self.layout
            item_id = str(row.get(layout.id) or "").strip()
            if not item_id:
                raise InvalidInputError(f"row {number}, column {layout.id!r}: empty id")
            if item_id in seen:
                raise InvalidInputError(
                    f"row {number}, column {layout.id!r}: duplicate id {item_id[:60]!r}"
                )
            seen.add(item_id)
            essay = _essay(row, layout, number, self.path.parent)
            human = {
                key: _score(row.get(col), number, col, maxima[key], False, scale)
                for key, col in layout.targets.items()
            }
            second = {
                key: score
                for key, col in layout.second.items()
                if (score := _score(row.get(col), number, col, maxima[key], True, scale))
                is not None
            }
            yield ScoredEssay(item_id, essay, human, second)
        if self.layout is None:
            raise InvalidInputError(f"{self.path} has no rows")


def load_anchors(path: Path, rubric: Rubric) -> list[dict[str, Any]]:
    """Anchor essays from a TOML or JSON file ({"anchors": [{essay, scores, justification}]})
    or from a CSV or JSONL file in the import format (id, essay, a score per criterion);
    checked against `rubric` (InvalidInputError with a one-line reason)."""
    from pydantic import ValidationError

    from grader.grading.rubric import validation_summary

    suffix = path.suffix.lower()
    if suffix in (".toml", ".json"):
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"cannot read anchors {path}: {first_line(exc)}") from None
        anchors = data.get("anchors") if isinstance(data, dict) else None
        if not isinstance(anchors, list) or not anchors:
            raise InvalidInputError(f"anchors {path}: expected a non-empty list 'anchors'")
    else:
        anchors, layout = [], None
        maxima = {c.key: c.max_points for c in rubric.criteria}
        for number, header, row in _rows(path):
            layout = layout or _layout(header, rubric, {})
            anchors.append(
                {
                    "essay": _essay(row, layout, number, path.parent),
                    "scores": {
                        key: _score(row.get(col), number, col, maxima[key], False, 1.0)
                        for key, col in layout.targets.items()
                        if key in maxima
                    },
                }
            )
    try:
        return list(rubric.with_anchors(anchors).definition()["anchors"])
    except ValidationError as exc:
        raise InvalidInputError(f"anchors {path}: {validation_summary(exc)}") from None
