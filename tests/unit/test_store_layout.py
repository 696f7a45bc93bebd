"""The store's layout, read from the source (no database): every SQL statement is a named query
in grader/store/sql/, one file per store module; every name the code asks for exists and every
named query is asked for; and nothing outside grader/store runs SQL (bench/ and tests/ may).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from grader.store.queries import _queries, named_queries


def _root() -> Path:
    here = Path(__file__).resolve()
    return next(p for p in here.parents if (p / "pyproject.toml").exists())


ROOT = _root()
STORE = ROOT / "grader" / "store"
# The functions that take a query's name, and the position of the name among their arguments.
TAKES_A_NAME = {"query": 0, "table": 1, "keyset_page": 1, "copy_csv": 1}
# Where SQL may be run outside grader/store: the benchmarks and the tests set up their data.
MAY_RUN_SQL = ("bench", "tests")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    """Every Python file of the project's packages and of bench/, parsed."""
    folders = [p for p in ROOT.iterdir() if (p / "__init__.py").exists()] + [ROOT / "bench"]
    for folder in sorted(folders):
        for path in sorted(folder.rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _name_arguments(tree: ast.Module) -> Iterator[tuple[int, str | None, str | None]]:
    """(line, the query name or None when it is not a literal, the enclosing function) of every
    call that takes a query's name."""

    def walk(node: ast.AST, function: str | None) -> Iterator[tuple[int, str | None, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, child.name)
                continue
            if isinstance(child, ast.Call) and _called(child) in TAKES_A_NAME:
                position = TAKES_A_NAME[_called(child)]
                if len(child.args) > position:
                    arg = child.args[position]
                    literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                    yield child.lineno, arg.value if literal else None, function
            yield from walk(child, function)

    yield from walk(tree, None)


def _asked_for() -> dict[str, list[str]]:
    """{query name: where the code asks for it}, tests left out."""
    asked: dict[str, list[str]] = {}
    for path, tree in _sources():
        if path.parts[0] == "tests":
            continue
        for line, name, function in _name_arguments(tree):
            if name is None:
                # only a function that itself takes a name passes one on
                assert function in TAKES_A_NAME, (
                    f"{path}:{line}: a query name must be a literal string, so that it can be "
                    "checked here"
                )
                continue
            asked.setdefault(name, []).append(f"{path}:{line}")
    return asked


def test_every_query_the_code_asks_for_exists() -> None:
    defined = _queries()
    missing = [
        f"{path}:{line}: {name}"
        for path, tree in _sources()
        for line, name, _ in _name_arguments(tree)
        if name is not None and name not in defined
    ]
    assert not missing, f"no such named query: {missing}"


def test_every_named_query_is_used() -> None:
    unused = sorted(set(_queries()) - set(_asked_for()))
    assert not unused, f"named queries nothing asks for (dead SQL): {unused}"


def test_one_sql_file_per_store_module() -> None:
    files = [f.name for f in resources.files("grader.store").joinpath("sql").iterdir()]
    assert "queries.sql" not in files
    sql = sorted(Path(f).stem for f in files if f.endswith(".sql"))
    assert sql and all((STORE / f"{stem}.py").exists() for stem in sql), sql


def test_a_name_defined_twice_is_refused() -> None:
    one = "-- the preamble\n\n-- name: a\nSELECT 1;\n\n-- name: b\nSELECT 2;\n"
    assert named_queries([("one.sql", one)]) == {"a": "SELECT 1;", "b": "SELECT 2;"}
    with pytest.raises(ValueError, match=r"'a' is defined in both one\.sql and two\.sql"):
        named_queries([("one.sql", one), ("two.sql", "-- name: a\nSELECT 3;\n")])
    with pytest.raises(ValueError, match=r"'b' is defined in both one\.sql and one\.sql"):
        named_queries([("one.sql", one + "\n-- name: b\nSELECT 4;\n")])


def _runs_sql(node: ast.Call) -> bool:
    """A call that runs SQL on a connection or cursor: execute, executemany, or COPY (a copy
    with a statement: dict.copy() and DataFrame.copy() take none)."""
    func = node.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in ("execute", "executemany"):
        return True
    return (
        func.attr == "copy"
        and bool(node.args)
        and not (
            isinstance(func.value, ast.Name) and func.value.id == "copy"  # the copy module
        )
    )


def _imports_queries(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "grader.store.queries" or (
            node.module == "grader.store" and any(a.name == "queries" for a in node.names)
        )
    return isinstance(node, ast.Import) and any(
        a.name == "grader.store.queries" for a in node.names
    )


def test_nothing_outside_the_store_runs_sql() -> None:
    found = []
    for path, tree in _sources():
        if path.parts[0] in MAY_RUN_SQL or path.is_relative_to("grader/store"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _runs_sql(node):
                found.append(f"{path}:{node.lineno}: .{node.func.attr}(")
            if _imports_queries(node):
                found.append(f"{path}:{node.lineno}: imports grader.store.queries")
    assert not found, f"SQL run outside grader/store: {found}"
