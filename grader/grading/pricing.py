"""What model calls cost: a price table in USD per million tokens, and the cost of one call.

Prices change: GRADER_PRICES names a TOML or JSON file of {"model": {"input": ..., "output": ...}}
that replaces the built-in table. A model matches the longest entry its name starts with. The
simulator's models cost nothing unless a price file gives them a price (the spending-cap tests
do, to spend simulated money).

The provider's Batch API has prices of its own: an entry's `batch_input` and `batch_output`, half
of `input` and `output` when the entry does not give them (OpenAI's discount for batches).
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from grader.errors import ConfigError

Prices = dict[str, dict[str, float]]

BATCH_DISCOUNT = 0.5  # a batch price, where the table gives none: half the synchronous one


def _entry(price: dict[str, Any]) -> dict[str, float]:
    entry = {"input": float(price["input"]), "output": float(price["output"])}
    for kind in ("input", "output"):
        given = price.get(f"batch_{kind}")
        entry[f"batch_{kind}"] = entry[kind] * BATCH_DISCOUNT if given is None else float(given)
    return entry


DEFAULT_PRICES: Prices = {
    model: _entry(price)
    for model, price in {
        "gpt-4o-mini": {"input": 0.15, "output": 0.60},
        "gpt-4o": {"input": 2.50, "output": 10.00},
        "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
        "gpt-4.1": {"input": 2.00, "output": 8.00},
        "simulated:": {"input": 0.0, "output": 0.0},
    }.items()
}


@cache  # read once per process: every grade of a batch needs it
def load_prices(path: str | None) -> Prices:
    if not path:
        return DEFAULT_PRICES
    try:
        text = Path(path).read_text(encoding="utf-8")
        table = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
        return {model: _entry(p) for model, p in table.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"GRADER_PRICES {path}: not a price table ({exc})") from None


def call_cost(
    model: str, prompt_tokens: int, completion_tokens: int, prices: Prices, batch: bool = False
) -> float | None:
    """USD for one call's tokens (at the Batch API's prices with `batch`); None when the table
    has no price for the model."""
    matches = [name for name in prices if model.startswith(name)]
    if not matches:
        return None
    price = prices[max(matches, key=len)]
    prefix = "batch_" if batch else ""
    return round(
        (prompt_tokens * price[f"{prefix}input"] + completion_tokens * price[f"{prefix}output"])
        / 1e6,
        6,
    )
