"""Agreement between the model's grades and human graders, per criterion and for the total.

The point figures come from scikit-learn (`cohen_kappa_score(weights="quadratic")`,
`confusion_matrix`) and pandas/numpy (Pearson, errors). The 95% interval of QWK is a bootstrap
over essays; resampling essays is resampling the cells of the confusion matrix, so each
replicate is one multinomial draw and the kappa of a matrix (checked against scikit-learn in
the tests) rather than a pass over every essay: 1,000 replicates of 100,000 essays take
milliseconds.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from grader.evaluation import TOTAL
from grader.grading.grade import SIMULATED_MODEL_PREFIX
from reports.render import percent, plt, seconds, usd, write_page

BOOTSTRAP_REPLICATES = 1000
SCATTER_POINTS = 5000  # essays drawn at most per scatter plot (a random sample of them)


def kappa_of_matrix(matrix: np.ndarray) -> np.ndarray:
    """Quadratic weighted kappa of one confusion matrix (k x k) or a stack of them (n x k x k):
    1 - sum(w * observed) / sum(w * expected), w the squared distance between labels."""
    matrix = np.asarray(matrix, dtype=float)
    k = matrix.shape[-1]
    weights = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    total = matrix.sum(axis=(-2, -1), keepdims=True)
    expected = matrix.sum(axis=-1, keepdims=True) * matrix.sum(axis=-2, keepdims=True) / total
    observed_cost = (weights * matrix).sum(axis=(-2, -1))
    expected_cost = (weights * expected).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - observed_cost / expected_cost


def qwk(human: np.ndarray, model: np.ndarray, top: int) -> float:
    labels = list(range(top + 1))
    if len(set(human) | set(model)) < 2:
        return float("nan")  # one label only: agreement by chance is total, kappa undefined
    return float(cohen_kappa_score(human, model, weights="quadratic", labels=labels))


def bootstrap_interval(
    matrix: np.ndarray, replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of QWK over essays resampled with replacement."""
    n = int(matrix.sum())
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, matrix.ravel() / n, size=replicates).reshape(-1, *matrix.shape)
    kappas = kappa_of_matrix(draws)
    kappas = kappas[np.isfinite(kappas)]
    if kappas.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(kappas, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class Agreement:
    """An evaluation run's figures: tables (CSV and HTML) and a JSON-able summary."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)
    pairs: dict[str, pd.DataFrame] = field(default_factory=dict)  # human, model per target
    summary: dict[str, Any] = field(default_factory=dict)


def read_results(data: bytes, criteria: list[str]) -> pd.DataFrame:
    """The run's results (CSV from evaluation.run_results) as one row per (essay, target). A
    human total the file did not give is the sum of the criteria when it gave all of them (the
    same for the second rater); otherwise the essay has no total."""
    frame = pd.read_csv(
        io.BytesIO(data),
        dtype={
            "item_id": str,
            "target": str,
            "human": "Int64",
            "second_rater": "Int64",
            "model": "Int64",
            "confidence": "string",
        },
        keep_default_na=False,
        na_values={"human": [""], "second_rater": [""], "model": [""], "confidence": [""]},
    )
    missing = frame["target"].eq(TOTAL) & frame["human"].isna()
    if missing.any():
        parts = frame[frame["target"].isin(criteria)].groupby("item_id")
        summed = {
            column: parts[column]
            .sum(min_count=len(criteria))
            .where(parts[column].count() == len(criteria))
            for column in ("human", "second_rater")
        }
        items = frame.loc[missing, "item_id"]
        for column, totals in summed.items():
            frame.loc[missing, column] = items.map(totals).astype("Int64").to_numpy()
        frame = frame[~(frame["target"].eq(TOTAL) & frame["human"].isna())]
    return frame.reset_index(drop=True)


def compute(run: dict[str, Any], data: bytes, jobs: dict[str, Any]) -> Agreement:
    """The agreement figures of a run from its results CSV and its jobs' summary."""
    rubric = run["rubric"]
    maxima = {c["key"]: c["max_points"] for c in rubric["criteria"]}
    criteria = list(maxima)
    maxima[TOTAL] = sum(maxima.values())
    names = {c["key"]: c["name"] for c in rubric["criteria"]} | {TOTAL: "Total"}
    results = read_results(data, criteria)
    result = Agreement()
    result.tables["items"] = results
    agreement_rows, band_rows = [], []
    for target in [k for k in maxima if k in set(results["target"])]:
        top = maxima[target]
        part = results[(results["target"] == target) & results["model"].notna()]
        human = part["human"].to_numpy(dtype=int)
        model = part["model"].to_numpy(dtype=int)
        labels = list(range(top + 1))
        matrix = (
            confusion_matrix(human, model, labels=labels)
            if len(part)
            else np.zeros((top + 1, top + 1), dtype=int)
        )
        result.matrices[target] = pd.DataFrame(
            matrix,
            index=pd.Index(labels, name="human"),
            columns=pd.Index(labels, name="model"),
        )
        result.pairs[target] = part[["human", "model"]]
        low, high = bootstrap_interval(matrix)
        diff = model - human
        both = results[(results["target"] == target) & results["second_rater"].notna()]
        agreement_rows.append(
            {
                "target": target,
                "name": names[target],
                "max_points": top,
                "essays": len(part),
                "qwk": qwk(human, model, top) if len(part) else float("nan"),
                "qwk_low": low,
                "qwk_high": high,
                "exact": float(np.mean(diff == 0)) if len(part) else float("nan"),
                "adjacent": float(np.mean(np.abs(diff) <= 1)) if len(part) else float("nan"),
                "pearson": float(pd.Series(human).corr(pd.Series(model)))
                if len(part) > 1
                else float("nan"),
                "mae": float(np.mean(np.abs(diff))) if len(part) else float("nan"),
                "mean_signed_error": float(np.mean(diff)) if len(part) else float("nan"),
                "human_human_qwk": qwk(
                    both["human"].to_numpy(dtype=int),
                    both["second_rater"].to_numpy(dtype=int),
                    top,
                )
                if len(both)
                else float("nan"),
                "human_human_essays": len(both),
            }
        )
        if len(part):
            frame = pd.DataFrame({"human": human, "error": diff})
            bands = frame.groupby("human")["error"].agg(["size", "mean", lambda e: e.abs().mean()])
            for score, (size, mean, mae) in bands.iterrows():
                band_rows.append(
                    {
                        "target": target,
                        "human_score": int(score),
                        "essays": int(size),
                        "mean_signed_error": float(mean),
                        "mae": float(mae),
                    }
                )
    result.tables["agreement"] = pd.DataFrame(agreement_rows)
    result.tables["error_by_human_score"] = pd.DataFrame(
        band_rows, columns=["target", "human_score", "essays", "mean_signed_error", "mae"]
    )
    result.tables["accuracy_by_confidence"] = _by_confidence(results)
    graded, models = jobs["graded"], sorted(jobs["models"])
    result.summary = {
        "run_id": str(run["run_id"]),
        "label": run["label"],
        "set": run["set_name"],
        "model": run["model"],
        "models_reported": models,
        "simulated": any(m.startswith(SIMULATED_MODEL_PREFIX) for m in models),
        "settings": run["settings"],
        "essays": jobs["essays"],
        "graded": graded,
        "failed": jobs["failed"],
        "cost_usd": round(jobs["cost_usd"], 6),
        "cost_per_essay_usd": round(jobs["cost_usd"] / graded, 6) if graded else None,
        "tokens_per_essay": round(jobs["tokens"] / graded, 1) if graded else None,
        "p50_seconds": None if jobs["p50_seconds"] is None else round(jobs["p50_seconds"], 3),
        # essays whose repeated samples disagreed beyond GRADER_DISAGREEMENT_POINTS
        "disagreement_rate": round(jobs["disagreed"] / graded, 4) if graded else None,
        "prompt_versions": sorted(jobs["prompt_versions"]),
        # a list, in the rubric's order (a JSON object's keys come back reordered)
        "targets": [{k: _json(v) for k, v in r.items()} for r in agreement_rows],
    }
    return result


CONFIDENCE_ORDER = ("low", "medium", "high")


def _by_confidence(results: pd.DataFrame) -> pd.DataFrame:
    """How often the model's score is right (equal to the human's) at each confidence it gave,
    per criterion: does its confidence separate right from wrong grades?"""
    part = results[results["confidence"].notna() & results["model"].notna()]
    columns = ["target", "confidence", "essays", "exact", "adjacent", "mae"]
    if part.empty:
        return pd.DataFrame(columns=columns)
    error = (part["model"] - part["human"]).abs().astype(float)
    frame = part.assign(exact=error == 0, adjacent=error <= 1, mae=error)
    table = (
        frame.groupby(["target", "confidence"])
        .agg(
            essays=("exact", "size"),
            exact=("exact", "mean"),
            adjacent=("adjacent", "mean"),
            mae=("mae", "mean"),
        )
        .reset_index()
    )
    order = {c: i for i, c in enumerate(CONFIDENCE_ORDER)}
    table = table.sort_values(["target", "confidence"], key=lambda s: s.map(order).fillna(s))
    return table[columns].reset_index(drop=True)


def _json(value: Any) -> Any:
    return None if isinstance(value, float) and np.isnan(value) else value


# --- the report folder ----------------------------------------------------------------------

_LABELS = {
    "target": "criterion",
    "name": "name",
    "max_points": "out of (points)",
    "essays": "essays",
    "qwk": "QWK",
    "qwk_low": "95% from",
    "qwk_high": "95% to",
    "exact": "exact",
    "adjacent": "within 1 point",
    "pearson": "Pearson r",
    "mae": "mean error (points)",
    "mean_signed_error": "bias: model − human (points)",
    "human_human_qwk": "human-human QWK",
    "human_human_essays": "double-marked essays",
    "human_score": "human score",
    "confidence": "model's confidence",
}


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if column in ("exact", "adjacent"):
        return percent(value)
    if isinstance(value, float):
        return f"{value:+.2f}" if column == "mean_signed_error" else f"{value:.2f}"
    return str(value)


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{html.escape(_LABELS.get(c, c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_cell(c, v))}</td>" for c, v in zip(frame.columns, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_None._"
    lines = [
        "| " + " | ".join(_LABELS.get(c, c) for c in frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += [
        "| " + " | ".join(_cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _charts(result: Agreement, folder: Path) -> list[tuple[str, str, str]]:
    targets = list(result.matrices)
    charts = []
    cols = min(3, len(targets))
    rows = -(-len(targets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.9 * rows), squeeze=False)
    for ax, target in zip(axes.ravel(), targets, strict=False):
        matrix = result.matrices[target].to_numpy()
        image = ax.imshow(matrix, cmap="Blues", origin="lower")
        ax.set_title(target)
        ax.set_xlabel("model score")
        ax.set_ylabel("human score")
        if matrix.shape[0] <= 12:
            for (i, j), count in np.ndenumerate(matrix):
                if count:
                    color = "white" if count > matrix.max() / 2 else "black"
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=color)
        fig.colorbar(image, ax=ax, shrink=0.7, label="essays")
    for ax in axes.ravel()[len(targets) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrices.png", dpi=90)
    plt.close(fig)
    charts.append(
        (
            "confusion_matrices.png",
            "Confusion matrices",
            "Each cell counts essays with that human score (rows) and model score (columns); "
            "perfect agreement is the diagonal.",
        )
    )

    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.9 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, target in zip(axes.ravel(), targets, strict=False):
        pairs = result.pairs[target].to_numpy(dtype=float)
        if len(pairs) > SCATTER_POINTS:  # a readable cloud, drawn fast; the figures use all
            pairs = pairs[rng.choice(len(pairs), SCATTER_POINTS, replace=False)]
        top = result.matrices[target].shape[0] - 1
        if len(pairs):
            jitter = rng.uniform(-0.2, 0.2, size=pairs.shape)
            ax.scatter(pairs[:, 0] + jitter[:, 0], pairs[:, 1] + jitter[:, 1], s=8, alpha=0.5)
        ax.plot([0, top], [0, top], color="grey", linewidth=1)
        ax.set_xlim(-0.5, top + 0.5)
        ax.set_ylim(-0.5, top + 0.5)
        ax.set_title(target)
        ax.set_xlabel("human score")
        ax.set_ylabel("model score")
    for ax in axes.ravel()[len(targets) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "model_vs_human.png", dpi=90)
    plt.close(fig)
    charts.append(
        (
            "model_vs_human.png",
            "Model score against human score",
            "One dot per essay (jittered so equal scores do not hide each other; at most "
            f"{SCATTER_POINTS:,} essays drawn at random per chart); dots on the grey line agree "
            "exactly, dots above it were graded higher by the model.",
        )
    )
    return charts


def simulated_warning(summary: dict[str, Any]) -> str | None:
    if not summary["simulated"]:
        return None
    noise = summary["settings"].get("simulator_noise")
    told = (
        f" It was given the human scores with noise {noise}, so these figures measure that "
        "noise, not a model."
        if noise
        else ""
    )
    return (
        "SIMULATED: these grades came from the built-in model simulator, not a real model." + told
    )


def headline(summary: dict[str, Any]) -> str:
    targets = {t["target"]: t for t in summary["targets"]}
    total = targets.get(TOTAL) or next(iter(targets.values()), None)
    settings = summary["settings"]
    how = [f"run {summary['label']}"]
    if settings.get("anchors"):
        how.append(f"{settings['anchors']} anchor essays in the prompt")
    if settings.get("samples", 1) > 1:
        how.append(
            f"each essay graded {settings['samples']} times, the median kept; samples "
            f"disagreed on {percent(summary['disagreement_rate'])} of essays"
        )
    text = (
        f"{summary['graded']:,} of {summary['essays']:,} essays of set {summary['set']!r} graded "
        f"by {summary['model']} ({'; '.join(how)})"
    )
    if total and total["qwk"] is not None:
        text += (
            f"; on the {total['name'].lower()} the model agrees with the human graders at QWK "
            f"{total['qwk']:.2f} (95% interval {total['qwk_low']:.2f}-{total['qwk_high']:.2f}), "
            f"exactly on {percent(total['exact'])} of essays, and "
        )
        bias = total["mean_signed_error"]
        text += (
            f"grades {'higher' if bias > 0 else 'lower'} by {abs(bias):.2f} points on average"
            if round(bias, 2)
            else "grades neither higher nor lower on average"
        )
        if total["human_human_qwk"] is not None:
            text += f"; two human raters agree at QWK {total['human_human_qwk']:.2f}"
    cost = summary["cost_per_essay_usd"]
    return text + f". Cost {usd(summary['cost_usd'])} ({usd(cost)} per essay)."


def write_report(result: Agreement, base: Path) -> Path:
    s = result.summary
    folder = base / "evaluations" / f"{s['set']}-{s['label']}-{s['run_id'][:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result.tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    for target, matrix in result.matrices.items():
        matrix.to_csv(folder / f"confusion_{target}.csv")
    charts = _charts(result, folder)
    warning = simulated_warning(s)
    agreement = result.tables["agreement"]
    bands = result.tables["error_by_human_score"]
    by_confidence = result.tables["accuracy_by_confidence"]
    title = f"Agreement with human graders: {s['set']}, run {s['label']}"

    md = [f"# {title}", ""]
    if warning:
        md += [f"> **{warning}**", ""]
    md += [headline(s), "", "## Agreement", "", _markdown_table(agreement), ""]
    md += ["## Error by human score", "", _markdown_table(bands), ""]
    md += ["## Accuracy by the model's confidence", "", _markdown_table(by_confidence), ""]
    for file, heading, caption in charts:
        md += [f"## {heading}", "", f"![{heading}]({file})", "", f"_{caption}_", ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")

    body = [f"<h1>{html.escape(title)}</h1>"]
    if warning:
        body.append(f'<p class="simulated" role="alert">{html.escape(warning)}</p>')
    body += [
        f'<p class="summary">{html.escape(headline(s))}</p>',
        "<h2>Agreement</h2>",
        '<p class="note">QWK: quadratic weighted kappa, 1 is perfect agreement, 0 is chance. '
        "Published human-human agreement on essay sets is about 0.6-0.8.</p>",
        _html_table(agreement),
    ]
    for file, heading, caption in charts:
        body.append(
            f'<h2>{html.escape(heading)}</h2><figure><img src="{file}" '
            f'alt="{html.escape(heading)}"><figcaption>{html.escape(caption)}</figcaption>'
            "</figure>"
        )
    body += ["<h2>Error by human score</h2>", _html_table(bands)]
    body += [
        "<h2>Accuracy by the model's confidence</h2>",
        '<p class="note">If the model\'s confidence means something, its "high" scores are '
        'right more often than its "low" ones.</p>',
        _html_table(by_confidence),
    ]
    write_page(folder / "report.html", title, body)
    return folder


def compare(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """Two runs' stored summaries side by side: per criterion QWK with its interval and bias,
    then cost, tokens and time per essay."""
    rows = []
    by_a = {t["target"]: t for t in a["targets"]}
    by_b = {t["target"]: t for t in b["targets"]}
    for target in dict.fromkeys([*by_a, *by_b]):
        ta, tb = by_a.get(target, {}), by_b.get(target, {})
        rows.append(
            {
                "measure": f"{target}: QWK [95%]",
                "a": _qwk_text(ta),
                "b": _qwk_text(tb),
            }
        )
        rows.append(
            {
                "measure": f"{target}: model minus human (points)",
                "a": _signed(ta.get("mean_signed_error")),
                "b": _signed(tb.get("mean_signed_error")),
            }
        )
    for key, label, fmt in (
        ("cost_per_essay_usd", "cost per essay", usd),
        ("tokens_per_essay", "tokens per essay", lambda v: f"{v:,.0f}"),
        ("p50_seconds", "trigger to grade, median (s)", seconds),
    ):
        rows.append(
            {
                "measure": label,
                "a": "–" if a.get(key) is None else fmt(a[key]),
                "b": "–" if b.get(key) is None else fmt(b[key]),
            }
        )
    return pd.DataFrame(rows)


def _qwk_text(target: dict[str, Any]) -> str:
    if target.get("qwk") is None:
        return "–"
    low, high = target.get("qwk_low"), target.get("qwk_high")
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"{target['qwk']:.2f}{interval}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"
