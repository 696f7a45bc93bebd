"""The house rules that a reader relies on, checked: the import contracts in pyproject.toml
(edges on top, flows apart from each other, the simulator outside the core, no cycles) and no
source file so long that a newcomer cannot take it in."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 600
SOURCE_DIRS = ("grader", "essay_grader", "model_simulator", "flows", "tasks", "reports", "bench")
# data, not code: the injection detector's rule table
LONG_DATA_FILES = {"grader/quality/injection_rules.py"}


def test_the_import_contracts_hold() -> None:
    # the report (which contract broke, by which import) is printed, and shown when this fails
    status = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    assert status == 0, "an import contract in pyproject.toml is broken: see the report above"


def test_no_source_file_is_over_600_lines() -> None:
    files = [
        path
        for folder in (*SOURCE_DIRS, "tests")
        for pattern in ("*.py", "*.sql")
        for path in (REPO / folder).rglob(pattern)
    ]
    assert len(files) > 50  # the walk found the tree
    too_long = {
        str(path.relative_to(REPO)): lines
        for path in files
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(REPO)) not in LONG_DATA_FILES
    }
    assert not too_long, f"files over {MAX_LINES} lines: {too_long}"
