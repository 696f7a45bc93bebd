"""How the commands print data: as text, or as JSON with --json."""

from __future__ import annotations

import argparse
import json
from typing import Any


def json_default(value: Any) -> str:
    """For json.dumps: ISO 8601 for times, str() for ids and the rest."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=json_default) if args.json else text)
