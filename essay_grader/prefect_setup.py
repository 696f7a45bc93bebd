"""How the grader starts Prefect: offline, and quiet on the console for one-off commands.

Called before Prefect is first imported, by the CLI and the test suite. Values already in the
environment win, so an operator can turn any of this back up.
"""

from __future__ import annotations

import os

OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # The v2 UI requests an outside analytics host on every page, analytics off or not; the v1
    # UI (the default for a browser with no saved preference when this is false) requests none.
    "PREFECT_SERVER_UI_V2_ENABLED": "false",
}


def configure_prefect() -> None:
    for name, value in OFFLINE.items():
        os.environ.setdefault(name, value)
    # A command reports each job's outcome itself (from the database, one line per
    # error); Prefect's run logs still reach the Prefect API and UI. Set
    # PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO to see them in the terminal as well.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    # The temporary local server takes a few seconds to start, many more on a loaded machine
    # (seen: over 20 s, Prefect's default limit, with a load average of 12 on two cores).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not os.environ.get("PREFECT_API_URL"):
        # One-off commands run against Prefect's temporary local server. Stopping it at exit
        # races its event recorder and prints cancelled-flush tracebacks that mean nothing
        # for the grades (they are in PostgreSQL); keep those out of the output.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def start_prefect() -> None:
    """Connects to the Prefect API now, starting the temporary local server if that is the
    one, so that its few seconds of start-up are not counted as the first job's queue wait."""
    import asyncio

    from prefect.client.orchestration import get_client

    async def hello() -> None:
        async with get_client() as client:
            await client.hello()

    asyncio.run(hello())
