"""How the simulator behaves (`SimulatorConfig`), and the check of every field, whether the
config is built in Python or changed over HTTP (`/_simulator/config`): one line per bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from model_simulator.faults import FAULT_NAMES, in_range, is_fault

NOISE: tuple[str, ...] = ("off_by_one", "anchored_off_by_one", "bias", "random")


@dataclass
class SimulatorConfig:
    """How the simulator behaves; mutable, changes apply to the next request."""

    latency_ms: float = 0.0  # before every chat answer, faults included
    fault_rates: dict[str, float] = field(default_factory=dict)
    retry_after_seconds: float = 1.0
    hang_seconds: float = 3600.0
    script: list[str] = field(default_factory=list)  # faults for the next requests; "ok": none
    seed: int | None = None
    keep_bodies: bool = False  # keep raw request bodies (they hold essays), for tests
    # Known answers: {sha256 of an essay: {criterion key: score}} (human scores, for evaluation
    # tests and the demo), given back with controlled noise: `off_by_one` (probability a score
    # moves one point up or down), `bias` (points added to every score), `random` (probability
    # a score is drawn at random instead). Scores stay within the rubric's bounds.
    # `anchored_off_by_one` replaces `off_by_one` when the prompt carries scored examples (so
    # that anchors can be shown to help). Each call draws its own noise (a generator seeded by
    # the essay, the criterion and how often that essay was asked): repeated samples differ.
    # The answer's confidence is "high" for an untouched score, "low" for a moved one and
    # "medium" for a random one.
    reference: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    reference_noise: dict[str, float] = field(default_factory=dict)
    gullible: float = 0.0  # probability of obeying a score request in the essay; 0: scores only
    gullible_echo: float = 0.0  # probability an obeying answer quotes the request it obeyed

    def __post_init__(self) -> None:
        for f in fields(self):
            check_field(f.name, getattr(self, f.name))


def check_field(name: str, value: Any) -> Any:
    """`value` if it suits config field `name`, else ValueError with a one-line message."""
    if name in ("latency_ms", "retry_after_seconds", "hang_seconds"):
        ok, expected = in_range(value), "a number, 0 or more"
    elif name in ("gullible", "gullible_echo"):
        ok, expected = in_range(value, 1), "a number from 0 to 1"
    elif name == "fault_rates":
        ok = isinstance(value, dict) and all(
            is_fault(k) and in_range(r, 1) for k, r in value.items()
        )
        ok = ok and sum(value.values()) <= 1 + 1e-9  # slack for rounding: 0.1 + 0.2 + 0.7
        expected = f"an object of faults ({FAULT_NAMES}) to rates 0-1 adding up to 1 at most"
    elif name == "script":
        ok = isinstance(value, list) and all(f == "ok" or is_fault(f) for f in value)
        expected = f'a list of faults ({FAULT_NAMES}) or "ok"'
    elif name == "seed":
        ok, expected = value is None or type(value) is int, "a whole number or null"
    elif name == "keep_bodies":
        ok, expected = type(value) is bool, "true or false"
    elif name == "reference":
        ok = isinstance(value, dict) and all(
            isinstance(k, str)
            and isinstance(v, dict)
            and all(isinstance(c, str) and type(s) is int for c, s in v.items())
            for k, v in value.items()
        )
        expected = "an object of essay sha256 to {criterion: whole-number score}"
    elif name == "reference_noise":
        ok = isinstance(value, dict) and set(value) <= set(NOISE)
        rates = ("off_by_one", "anchored_off_by_one", "random")
        ok = ok and all(in_range(value[k], 1) for k in rates if k in value)
        bias = value.get("bias", 0) if ok else None
        ok = ok and in_range(abs(bias) if isinstance(bias, int | float) else None)
        expected = "an object with off_by_one and random (0-1) and bias (points)"
    else:
        raise ValueError(f"unknown config field {name!r}")
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value
