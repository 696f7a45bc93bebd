"""`grader demo` on a fresh home: embedded PostgreSQL, the simulator, five graded essays. Run as
a user runs it, a process of its own: its whole output, Prefect's shutdown included, is checked."""

from __future__ import annotations

import json
from pathlib import Path

from essay_grader.demo import sample_essays
from tests.support.cli import run_cli


def test_demo_grades_the_samples_on_a_fresh_machine(tmp_path: Path) -> None:
    env = {"GRADER_HOME": str(tmp_path / "home")}
    try:
        done = run_cli("demo", env=env)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "built-in model simulator" in out and "SIMULATED" in out
        assert f"embedded PostgreSQL in {tmp_path / 'home' / 'pgdata'}" in out
        names = [name for name, _ in sample_essays()]
        assert len(names) >= 5
        for name in names:
            assert f"completed  {name}" in out
        assert f"last 7 days: {len(names)} completed, 0 failed" in out
        # nothing alarming, Prefect's shutdown included
        for noise in ("ERROR", "Traceback", "Exception"):
            assert noise not in out + done.stderr

        # the embedded server is reused: the second run finds the first run's jobs
        again = run_cli("demo", "--json", env=env)
        assert again.returncode == 0, again.stderr
        result = json.loads(again.stdout)
        assert result["simulated"] is True
        assert {s["status"] for s in result["results"].values()} == {"completed"}
        assert result["stats"]["completed"] == 2 * len(names)
    finally:
        stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0 and "stopped the embedded PostgreSQL" in stopped.stdout
