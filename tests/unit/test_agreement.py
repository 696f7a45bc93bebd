"""The agreement figures of an evaluation run (reports.agreement) on cases worked by hand:
QWK, exact and adjacent agreement, bias, the second rater, confidence, the bootstrap interval."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from reports.agreement import bootstrap_interval, compute, kappa_of_matrix


def _rubric(*criteria: str, top: int = 10) -> dict:
    return {
        "name": "r",
        "criteria": [{"key": k, "name": k.title(), "max_points": top} for k in criteria],
    }


def _row(item: str, human: dict, model: dict | None, second: dict | None = None) -> dict:
    """One essay's result, as the test writes it down."""
    return {"item_id": item, "human": human, "second": second or {}, "model": model}


def _results(rows: list[dict], model: str = "gpt-4o-mini") -> tuple[bytes, dict]:
    """The CSV and jobs summary `evaluation.run_results` gives for these essays: a row per
    (essay, target) with the model's confidence "high" when it is right and "low" when not,
    and a total row without a human score where the human gave no total."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["item_id", "target", "human", "second_rater", "model", "confidence"])
    for r in rows:
        graded = r["model"] or {}
        for target in [*r["human"], *([] if "total" in r["human"] else ["total"])]:
            if target == "total":
                score, confidence = (sum(graded.values()) if graded else None), None
            else:
                score = graded.get(target)
                confidence = (
                    None if score is None else ("high" if score == r["human"][target] else "low")
                )
            writer.writerow(
                [
                    r["item_id"],
                    target,
                    r["human"].get(target),
                    r["second"].get(target),
                    score,
                    confidence,
                ]
            )
    graded = [r for r in rows if r["model"]]
    jobs = {
        "essays": len(rows),
        "graded": len(graded),
        "failed": len(rows) - len(graded),
        "cost_usd": 0.001 * len(graded),
        "tokens": 110 * len(graded),
        "p50_seconds": 2.0,
        "models": [model] if graded else [],
        "prompt_versions": ["abc123"],
        "disagreed": 0,
    }
    return out.getvalue().encode(), jobs


def _run(rubric: dict) -> dict:
    return {
        "run_id": "00000000-0000-0000-0000-000000000001",
        "label": "t",
        "set_name": "s",
        "model": "gpt-4o-mini",
        "settings": {},
        "rubric": rubric,
    }


def test_agreement_figures_match_a_case_worked_by_hand() -> None:
    # human 0 1 2 2, model 0 2 2 1 (scale 0-2). Confusion (rows human): [[1,0,0],[0,0,1],[0,1,1]];
    # quadratic weights: observed cost 2, expected cost 5.5 -> QWK 1 - 2/5.5 = 7/11.
    # Exact 2/4, within one 4/4, MAE 2/4, mean signed error 0, Pearson 1.75/2.75 = 7/11.
    rows = [
        _row("a", {"x": 0}, {"x": 0}),
        _row("b", {"x": 1}, {"x": 2}),
        _row("c", {"x": 2}, {"x": 2}),
        _row("d", {"x": 2}, {"x": 1}),
        _row("e", {"x": 1}, None),  # a failed job: no grade, left out of the figures
    ]
    result = compute(_run(_rubric("x", top=2)), *_results(rows))
    x = result.tables["agreement"].set_index("target").loc["x"]
    assert x["essays"] == 4
    assert x["qwk"] == pytest.approx(7 / 11)
    assert (x["exact"], x["adjacent"], x["mae"], x["mean_signed_error"]) == (0.5, 1.0, 0.5, 0.0)
    assert x["pearson"] == pytest.approx(7 / 11)
    assert x["qwk_low"] <= x["qwk"] <= x["qwk_high"]
    assert result.matrices["x"].to_numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    bands = result.tables["error_by_human_score"]
    band2 = bands[(bands["target"] == "x") & (bands["human_score"] == 2)].iloc[0]
    assert (band2["essays"], band2["mean_signed_error"], band2["mae"]) == (2, -0.5, 0.5)
    s = result.summary
    assert (s["essays"], s["graded"], s["failed"]) == (5, 4, 1)
    assert s["prompt_versions"] == ["abc123"] and s["disagreement_rate"] == 0
    # confidence: "high" on the two exact scores, "low" on the two one off
    by_confidence = result.tables["accuracy_by_confidence"]
    assert by_confidence[["confidence", "essays", "exact", "mae"]].values.tolist() == [
        ["low", 2, 0.0, 1.0],
        ["high", 2, 1.0, 0.0],
    ]
    assert s["cost_per_essay_usd"] == pytest.approx(0.001)
    assert s["tokens_per_essay"] == 110


def test_totals_second_rater_and_bias() -> None:
    # the human total is the sum of the criteria when the file gives no total; the model grades
    # one point high on a; the second rater agrees exactly with the first
    rows = [
        _row(i, {"a": h, "b": 3}, {"a": h + 1, "b": 3}, second={"a": h, "b": 3})
        for i, h in (("1", 0), ("2", 1), ("3", 2), ("4", 3))
    ]
    result = compute(_run(_rubric("a", "b", top=5)), *_results(rows))
    table = result.tables["agreement"].set_index("target")
    assert list(table.index) == ["a", "b", "total"]
    assert table.loc["a", "mean_signed_error"] == 1.0 and table.loc["a", "exact"] == 0.0
    assert table.loc["a", "adjacent"] == 1.0
    assert table.loc["total", "mean_signed_error"] == 1.0
    assert table.loc["a", "human_human_qwk"] == 1.0 and table.loc["a", "human_human_essays"] == 4
    assert np.isnan(table.loc["b", "qwk"])  # one label only: kappa is undefined, not 1


def test_kappa_of_a_matrix_is_scikit_learns_and_the_interval_narrows_with_more_essays() -> None:
    rng = np.random.default_rng(7)
    for n in (10, 200, 5000):
        human = rng.integers(0, 11, n)
        model = np.clip(human + rng.integers(-2, 3, n), 0, 10)
        matrix = np.zeros((11, 11), dtype=int)
        np.add.at(matrix, (human, model), 1)
        expected = cohen_kappa_score(human, model, weights="quadratic", labels=list(range(11)))
        assert kappa_of_matrix(matrix) == pytest.approx(expected)
    low_small, high_small = bootstrap_interval(_matrix(rng, 50))
    low_big, high_big = bootstrap_interval(_matrix(rng, 5000))
    assert high_big - low_big < (high_small - low_small) / 4  # ~ 1/sqrt(100) as wide


def _matrix(rng: np.random.Generator, n: int) -> np.ndarray:
    human = rng.integers(0, 11, n)
    model = np.clip(human + rng.integers(-2, 3, n), 0, 10)
    matrix = np.zeros((11, 11), dtype=int)
    np.add.at(matrix, (human, model), 1)
    return matrix
