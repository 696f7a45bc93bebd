"""Running the `grader` command from a test: in this process through `main(argv)` (the usual
way), or as a real subprocess where a process boundary is what the test is about (a process
killed, signalled, racing another, or started as a user starts it).

Both give a subprocess.CompletedProcess (returncode, stdout, stderr), so the assertions read the
same either way.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout

import pytest

from tests.support.session import REPO


def run_main(*args: str, env: dict[str, str | None] | None = None):
    """Runs `grader ARGS` in this process, with `env` set in os.environ for the call (a None
    removes that variable) and the working directory the repository's, as run_cli does.

    What a process would do at exit is done here too: a SystemExit (argparse's usage errors)
    becomes the return code, and an exception main() lets through is printed as a traceback on
    the captured stderr with code 1, so that a test asserting "no traceback" still can fail.
    Logging goes to pytest's capture, not to the stderr returned."""
    from essay_grader.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout), redirect_stderr(stderr):
        for name, value in (env or {}).items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        patch.chdir(REPO)
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except Exception:
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(
        ["grader", *args], code, stdout.getvalue(), stderr.getvalue()
    )


def _exit_code(code: object) -> int:
    """The status a process exits with for sys.exit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "essay_grader.cli", *args]


def run_cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 300):
    """Runs the real `grader` command in a subprocess with this test's environment; a None in
    `env` removes that variable. For tests of a process boundary only: run_main otherwise."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={name: value for name, value in merged.items() if value is not None},
        cwd=REPO,
    )
