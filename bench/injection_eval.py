"""Evaluation: the injection detector against attacks and essays that others wrote.

    .venv/bin/python bench/injection_eval.py --bipia BIPIA/benchmark --ellipse ELLIPSE_test.csv

Attacks: the BIPIA benchmark's (Microsoft, MIT licence; github.com/microsoft/BIPIA) indirect
prompt-injection instructions, `text_attack_{train,test}.json` and `code_attack_{train,test}.json`
(250 instructions in 50 categories), each embedded in a real student essay at the start, in the
middle (at a paragraph break) and at the end. Essays: the ELLIPSE corpus's test set (2,571 essays
by English language learners in grades 8-12; CC BY-NC-SA 4.0, github.com/scrosseye/ELLIPSE-Corpus,
a password-protected zip whose password its README gives), used as they are for the false-positive
rate. Neither data set is shipped with the project: point this script at your copies.

Prints and writes bench/results/injection_eval.json: recall overall, by source file, by category
and by position; false positives on the essays; detection time per essay (p50/p99) at 10,000
characters.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import write_result
from grader.injection import detect_injection

ATTACK_FILES = (
    "text_attack_train.json",
    "text_attack_test.json",
    "code_attack_train.json",
    "code_attack_test.json",
)
POSITIONS = ("start", "middle", "end")


def load_attacks(folder: Path) -> list[tuple[str, str, str]]:
    """(source file, category, instruction) for every BIPIA attack instruction."""
    attacks = []
    for name in ATTACK_FILES:
        for category, texts in json.loads((folder / name).read_text(encoding="utf-8")).items():
            attacks += [(name.removesuffix(".json"), category, text) for text in texts]
    return attacks


def load_essays(path: Path) -> list[str]:
    csv.field_size_limit(10**8)
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return [row["full_text"] for row in csv.DictReader(handle) if row["full_text"].strip()]


def embed(essay: str, attack: str, position: str) -> str:
    if position == "start":
        return f"{attack}\n\n{essay}"
    if position == "end":
        return f"{essay}\n\n{attack}"
    breaks = [i for i in range(len(essay)) if essay.startswith("\n\n", i)]
    cut = breaks[len(breaks) // 2] if breaks else len(essay) // 2
    return f"{essay[:cut]}\n\n{attack}\n\n{essay[cut:]}"


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bipia", type=Path, required=True, help="BIPIA's benchmark/ folder")
    parser.add_argument("--ellipse", type=Path, required=True, help="ELLIPSE's test CSV")
    args = parser.parse_args()
    attacks = load_attacks(args.bipia)
    essays = load_essays(args.ellipse)
    rng = random.Random(0)

    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed_examples: list[str] = []
    for source, category, attack in attacks:
        for position in POSITIONS:
            flagged = bool(detect_injection(embed(rng.choice(essays), attack, position)))
            for key in ("all", f"source:{source}", f"category:{category}", f"at:{position}"):
                by[key][0] += flagged
                by[key][1] += 1
            if not flagged and len(missed_examples) < 5 and position == "end":
                missed_examples.append(f"{category}: {attack[:90]}")

    false_positives = [i for i, essay in enumerate(essays) if detect_injection(essay)]

    long_essays = []
    for essay in rng.sample(essays, 200):
        text = essay
        while len(text) < 10_000:
            text += "\n\n" + rng.choice(essays)
        long_essays.append(text[:10_000])
    times = []
    for text in long_essays:
        started = time.perf_counter()
        detect_injection(text)
        times.append(time.perf_counter() - started)
    q = statistics.quantiles(times, n=100)

    result = {
        "attacks": len(attacks),
        "embedded_attacks": by["all"][1],
        "essays": len(essays),
        "recall": _rate(*by["all"]),
        "recall_by_source": {
            k[7:]: _rate(*v) for k, v in sorted(by.items()) if k.startswith("source:")
        },
        "recall_by_position": {k[3:]: _rate(*v) for k, v in by.items() if k.startswith("at:")},
        "recall_by_category": {
            k[9:]: _rate(*v) for k, v in sorted(by.items()) if k.startswith("category:")
        },
        "false_positive_rate_essays": _rate(len(false_positives), len(essays)),
        "false_positives": len(false_positives),
        "detect_ms_10k_p50": round(statistics.median(times) * 1000, 2),
        "detect_ms_10k_p99": round(q[98] * 1000, 2),
        "missed_examples": missed_examples,
    }
    write_result("injection_eval", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
