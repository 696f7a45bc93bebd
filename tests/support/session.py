"""The test session's private places and the environment every test runs in, set on import.

Imported first by the root conftest, before anything imports Prefect: Prefect reads its settings
once, when first imported (collecting a test module may import the flows), so PREFECT_HOME and
PREFECT_API_URL must be in the environment by then. Cheap: no server is started here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from essay_grader.prefect_setup import configure_prefect
from essay_grader.stack import free_port

REPO = Path(__file__).resolve().parents[2]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="grader-tests-"))

# The session's Prefect server (the prefect_api fixture starts it on this port, for the tests
# that need one). Every thread of this process, and every process it starts, uses that server,
# never a temporary one of its own; a unit test that reached for Prefect would find nothing
# listening and fail, instead of starting one.
PREFECT_PORT = free_port()
PREFECT_API_URL = f"http://127.0.0.1:{PREFECT_PORT}/api"

# A private Prefect and grader home, offline, and fast retries so that retry paths run in
# milliseconds (flows read the policy when they start). No hand-off: the session's Prefect
# server has no deployments (tests of the hand-off run their own stack).
os.environ.update(
    {
        "PREFECT_HOME": str(SESSION_DIR / "prefect"),
        "GRADER_HOME": str(SESSION_DIR / "grader"),
        "GRADER_RETRY_BACKOFF_SECONDS": "0.05",
        "GRADER_MODEL_RETRIES": "4",
        "GRADER_REQUEST_TIMEOUT": "2",
        "GRADER_DEPLOYMENT": "",
        "PREFECT_API_URL": PREFECT_API_URL,
        # The simulator scores each call of an essay anew, so a recheck (GRADER_RECHECK) of a
        # high grade would add calls and reasons at random; the tests of the recheck turn it on.
        "GRADER_RECHECK": "off",
    }
)
for name in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_MODEL"):
    os.environ.pop(name, None)

configure_prefect()
