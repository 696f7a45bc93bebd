"""The grader as a user installs it: a wheel built from this tree, installed into a fresh
virtualenv, run from a folder with no source tree. Migrations and prefect.yaml must come with
it (package data, or files of the installed distribution), or `grader migrate` finds nothing.

The fresh virtualenv gets this one's site-packages on its path for the dependencies (installing
prefect and pandas again would download them); the grader itself comes only from the wheel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.session import REPO


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the wheel installed; its bin folder."""
    root = tmp_path_factory.mktemp("wheel")
    # built from a copy, so that the build writes nothing into this tree (two runs may share it)
    source = root / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "results"
        ),
    )
    built = _run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(root / "dist"), str(source)),
        ]
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (root / "dist").glob("essay_grader-*.whl")

    venv = root / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    # this environment's packages after the new one's own: only dependencies come from here
    Path(purelib, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install"),
            *("--no-deps", "--no-index", str(wheel)),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def test_the_wheel_carries_the_grader_and_its_data(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        [
            str(installed / "python"),
            "-c",
            "import essay_grader, grader, migrations; "
            "from importlib.resources import files; "
            "from grader.store.migrations import discover; "
            "from essay_grader.stack import prefect_file; "
            "print(essay_grader.__file__); print(len(discover())); print(prefect_file()); "
            "print(len(list(files('essay_grader').joinpath('templates').iterdir())))",
        ],
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    package, migrations, prefect_yaml, templates = probe.stdout.split()
    venv = installed.parent.resolve()
    assert Path(package).resolve().is_relative_to(venv)  # not this source tree
    assert int(migrations) == len(list((REPO / "migrations").glob("*.sql")))
    assert Path(prefect_yaml).is_relative_to(venv)
    assert Path(prefect_yaml).read_text() == (REPO / "prefect.yaml").read_text()
    # the review page's templates
    assert int(templates) == len(list((REPO / "essay_grader" / "templates").glob("*.html")))


def test_the_installed_grader_migrates_and_runs_the_demo(
    installed: Path, pg_admin_url: str, tmp_path: Path
) -> None:
    import psycopg

    name = "grader_wheel_test"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    env = {
        **os.environ,
        "DATABASE_URL": psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name),
        "GRADER_HOME": str(tmp_path / "home"),
    }
    migrated = _run([str(installed / "grader"), "migrate"], cwd=tmp_path, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied 0001_initial_schema.sql" in migrated.stdout

    demo = _run([str(installed / "grader"), "demo"], cwd=tmp_path, env=env)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    graded = re.findall(r"^  completed  \S+ \d+/\d+$", demo.stdout, re.MULTILINE)
    assert len(graded) == 5, demo.stdout
    assert "SIMULATED" in demo.stdout
    assert f"Try: {installed / 'grader'} status " in demo.stdout
