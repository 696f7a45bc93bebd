"""The simulator as its own process, as `grader simulate-llm` runs it: it says where it listens
and stops cleanly on a signal, even with a request hanging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

import openai
import pytest

from tests.support.model_calls import _ask
from tests.support.session import REPO


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_announces_itself_and_stops_cleanly_on_signal(stop_signal: int) -> None:
    code = (
        "from model_simulator import SimulatorConfig, serve_forever\n"
        "serve_forever('127.0.0.1', 0, SimulatorConfig(script=['drop', 'hang']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("Model simulator listening on http://127.0.0.1:")
        assert line.rstrip().endswith("/v1 (answers are SIMULATED, not grades)")
        base_url = line.split()[4]
        with urllib.request.urlopen(base_url + "/models", timeout=5) as response:
            assert response.status == 200
        client = openai.OpenAI(base_url=base_url, api_key="t", max_retries=0, timeout=30)
        with pytest.raises(openai.APIConnectionError):
            _ask(client)  # dropped, without a word on stderr
        # A hanging request must not hold up the stop.
        errors: list[Exception] = []
        caller = threading.Thread(target=lambda: errors.append(_try(lambda: _ask(client))))
        caller.start()
        time.sleep(0.5)
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=5)
        caller.join(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0
    assert stdout == b""
    assert stderr == b""
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)


def _try(call: Any) -> Exception | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None
