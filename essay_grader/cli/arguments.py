"""The argparse types the commands' numbers are read with: one clear line for a bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _at_least(minimum: float, cast: type = int) -> Callable[[str], Any]:
    """An argparse type: a number of type `cast`, no smaller than `minimum`."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


positive_int = _at_least(1)
non_negative_float = _at_least(0.0, float)


def probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{value} must be at most 1")
    return value


def cap(text: str) -> float | None:
    """An argparse type: a cap in USD, or 'none'."""
    if text.strip().lower() == "none":
        return None
    return non_negative_float(text)
