"""Checking grades against human graders: the import of human-scored sets (and every kind of
bad input), and evaluation runs end to end through the `grader` command, the real flow and
tasks, PostgreSQL and the simulator told the human scores with known noise."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sklearn.metrics import cohen_kappa_score

import essay_grader
from grader import evaluation
from grader.errors import InvalidInputError
from grader.grading.pricing import DEFAULT_PRICES
from grader.grading.rubric import Rubric, load_rubric
from grader.model.prompt import prompt_version, system_prompt
from grader.store import evaluation as store_evaluation
from reports.render import summary_paragraph
from reports.weekly import build_report, make_window
from tests.support.cli import run_main
from tests.unit.test_anchors import ANCHORS

NO_MODEL = {"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None}
SAMPLE_SET = Path(essay_grader.__file__).parent / "samples" / "evaluation" / "sample_set.csv"
CRITERIA = ("thesis", "evidence", "organization", "language")


# --- import -------------------------------------------------------------------------------


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) AS n FROM grader.{table}").fetchone()["n"]


def test_the_shipped_set_imports_with_its_second_rater(conn: psycopg.Connection) -> None:
    done = run_main("evaluate", "import", str(SAMPLE_SET), "--name", "sample", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["items"] == 40 and result["targets"] == list(CRITERIA)
    assert result["second_rater"] == list(CRITERIA)
    assert _count(conn, "evaluation_items") == 40 and _count(conn, "submissions") == 40
    again = run_main("evaluate", "import", str(SAMPLE_SET), "--name", "sample")
    assert again.returncode == 1 and "a set named 'sample' exists" in again.stderr
    assert _count(conn, "submissions") == 40


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _import(
    conn: psycopg.Connection,
    path: Path,
    rubric: Rubric,
    name: str,
    mapping: dict[str, str],
    scale: float = 1.0,
) -> int:
    """Imports a set file as `grader evaluate import` does; how many essays."""
    scored = evaluation.ScoredSet(path, rubric, mapping, scale)
    return store_evaluation.import_set(conn, scored, rubric, name, path.name)


GOOD = ["a", "An essay about school.", 5, 6, 7, 8]
HEADER = ["id", "essay", *CRITERIA]


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (
            [GOOD, ["b", "Text.", 11, 1, 1, 1]],
            [],
            "row 3, column 'thesis': score 11 is outside 0-10",
        ),
        ([GOOD, ["b", "Text.", 5.5, 1, 1, 1]], [], "row 3, column 'thesis': score '5.5' is not a "),
        ([GOOD, ["b", "Text.", "", 1, 1, 1]], [], "row 3, column 'thesis': no score"),
        ([["a", "   ", 1, 1, 1, 1]], [], "row 2, column 'essay': empty essay"),
        ([GOOD, GOOD], [], "row 3, column 'id': duplicate id 'a'"),
        ([GOOD], ["--map", "thesis=rater1_thesis"], "missing column 'rater1_thesis'"),
        ([GOOD], ["--map", "style=x"], "--map names unknown field 'style'"),
    ],
    ids=[
        "out-of-bounds",
        "not-whole",
        "no-score",
        "empty-essay",
        "duplicate-id",
        "missing-mapped-column",
        "unknown-field",
    ],
)
def test_bad_input_names_row_and_column_and_imports_nothing(
    conn: psycopg.Connection, tmp_path: Path, rows: list, extra: list[str], message: str
) -> None:
    path = _csv(tmp_path / "set.csv", HEADER, rows)
    mapping = evaluation.parse_mapping(extra[1] if extra else None)
    with pytest.raises(InvalidInputError) as failure:
        _import(conn, path, load_rubric(), "s", mapping)
    assert message in str(failure.value) and "\n" not in str(failure.value)
    assert _count(conn, "evaluation_sets") == 0 and _count(conn, "submissions") == 0


def test_a_bad_row_after_thousands_of_good_ones_leaves_nothing(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    rows = [[f"ok{i}", f"Essay {i}.", 1, 2, 3, 4] for i in range(4500)]  # past two COPY chunks
    rows.append(["late", "Essay.", 1, 2, 3, 99])
    done = run_main("evaluate", "import", str(_csv(tmp_path / "s.csv", HEADER, rows)))
    assert done.returncode == 1 and "row 4502, column 'language': score 99" in done.stderr
    assert _count(conn, "evaluation_items") == 0 and _count(conn, "submissions") == 0


def test_undecodable_text_missing_essay_column_and_bad_jsonl(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"id,essay,thesis\na,caf\xe9 essay,5\n")
    done = run_main("evaluate", "import", str(latin))
    assert done.returncode == 1 and "row 2, column 'essay': not UTF-8 text" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    no_essay = _csv(tmp_path / "n.csv", ["id", "text", "thesis"], [["a", "x", 1]])
    done = run_main("evaluate", "import", str(no_essay))
    assert done.returncode == 1 and "missing column 'essay' or 'essay_path'" in done.stderr
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('{"id": "a", "essay": "x", "thesis": 3}\n{"id": "b", "essay": \n')
    done = run_main("evaluate", "import", str(jsonl))
    assert done.returncode == 1 and "row 2: not JSON" in done.stderr
    assert _count(conn, "submissions") == 0


def test_asap_style_columns_with_a_mapping_and_essays_in_files(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "e1.txt").write_text("First essay.", encoding="utf-8")
    (tmp_path / "e2.txt").write_text("Second essay.", encoding="utf-8")
    path = _csv(
        tmp_path / "asap.csv",
        ["essay_id", "path", "rater1_domain1", "rater2_domain1", "domain1_score"],
        [[1, "e1.txt", 20, 22, 21], [2, "e2.txt", 30, 29, 30]],
    )
    done = run_main(
        "evaluate",
        "import",
        str(path),
        "--name",
        "asap",
        "--json",
        "--map",
        "id=essay_id,essay_path=path,total=rater1_domain1,second_total=rater2_domain1",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["targets"] == ["total"]
    humans = conn.execute(
        "SELECT human, second FROM grader.evaluation_items ORDER BY item_id"
    ).fetchall()
    assert humans == [
        {"human": {"total": 20}, "second": {"total": 22}},
        {"human": {"total": 30}, "second": {"total": 29}},
    ]


def test_ellipse_style_half_points_scaled_to_whole_ones(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path / "ellipse.csv",
        ["text_id", "full_text", "Cohesion", "Syntax", "Vocabulary", "Phraseology"],
        [["T1", "An essay.", 3.5, 3.0, 4.5, 2.5]],
    )
    rubric = load_rubric()
    mapping = "id=text_id,essay=full_text,thesis=Cohesion,evidence=Syntax,organization=Vocabulary"
    mapping += ",language=Phraseology"
    assert _import(conn, path, rubric, "ellipse", evaluation.parse_mapping(mapping), scale=2) == 1
    human = conn.execute("SELECT human FROM grader.evaluation_items").fetchone()["human"]
    assert human == {"thesis": 7, "evidence": 6, "organization": 9, "language": 5}
    with pytest.raises(InvalidInputError, match=r"row 2, column 'Cohesion': score '3.5' is not a"):
        _import(conn, path, rubric, "unscaled", evaluation.parse_mapping(mapping))


# --- evaluation runs end to end ----------------------------------------------------------------


def _synthetic_set(path: Path, n: int, seed: int) -> np.ndarray:
    """n essays with human scores spread over 0-10 and a second rater one point off 30% of the
    time; returns the human scores (n x 4)."""
    rng = np.random.default_rng(seed)
    human = np.clip(np.round(rng.normal(6, 2, size=(n, 4))), 0, 10).astype(int)
    second = np.clip(human + rng.choice([-1, 0, 1], p=[0.15, 0.7, 0.15], size=human.shape), 0, 10)
    _csv(
        path,
        ["id", "essay", *CRITERIA, *(f"second_{c}" for c in CRITERIA)],
        [
            [
                f"e{i}",
                f"Essay number {i}. Schools should plant more trees, for reasons {i * 7}.",
                *human[i],
                *second[i],
            ]
            for i in range(n)
        ],
    )
    return human


def _expected_qwk_range(human: np.ndarray, p: float, replicates: int = 400) -> tuple[float, float]:
    """QWK of one criterion when each score moves one point with probability p (clamped to
    0-10): the 0.5th to 99.5th percentile over simulated replicates, by scikit-learn."""
    rng = np.random.default_rng(1)
    kappas = []
    for _ in range(replicates):
        moved = rng.random(human.size) < p
        model = np.clip(human + moved * rng.choice([-1, 1], size=human.size), 0, 10)
        kappas.append(cohen_kappa_score(human, model, weights="quadratic", labels=range(11)))
    return float(np.percentile(kappas, 0.5)), float(np.percentile(kappas, 99.5))


def test_an_evaluation_with_known_noise_measures_the_qwk_the_noise_implies(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    n, p = 200, 0.5
    human = _synthetic_set(tmp_path / "set.csv", n, seed=3)
    env = {**NO_MODEL, "GRADER_REPORTS_DIR": str(tmp_path / "reports")}
    assert (
        run_main("evaluate", "import", str(tmp_path / "set.csv"), "--name", "syn").returncode == 0
    )
    done = run_main(
        "evaluate",
        "run",
        "syn",
        "--label",
        "noisy",
        "--simulate-off-by-one",
        str(p),
        "--concurrency",
        "20",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["essays"], summary["graded"], summary["failed"]) == (n, n, 0)
    assert summary["simulated"] is True
    targets = {t["target"]: t for t in summary["targets"]}
    for i, criterion in enumerate(CRITERIA):
        low, high = _expected_qwk_range(human[:, i], p)
        measured = targets[criterion]["qwk"]
        assert low <= measured <= high, (criterion, measured, low, high)
        assert targets[criterion]["qwk_low"] < measured < targets[criterion]["qwk_high"]
        # second rater: 30% one point off, the ceiling a school compares against
        assert 0.8 < targets[criterion]["human_human_qwk"] < 1
        assert targets[criterion]["human_human_essays"] == n
    # the file gives no total: it is the sum of the four criteria, for both raters
    assert targets["total"]["essays"] == n and targets["total"]["human_human_essays"] == n
    assert targets["total"]["max_points"] == 40

    folder = Path(summary["folder"])
    page = (folder / "report.html").read_text()
    assert page.index("SIMULATED") < page.index("<h2>")
    for name in (
        "agreement.csv",
        "items.csv",
        "error_by_human_score.csv",
        "confusion_thesis.csv",
        "confusion_matrices.png",
        "model_vs_human.png",
    ):
        assert (folder / name).stat().st_size > 0, name

    # the run's jobs are kept out of production monitoring and the weekly report
    recent = json.loads(run_main("jobs", "recent", "--json").stdout)
    assert recent == []
    week = build_report(conn, make_window(None, None, "UTC"), DEFAULT_PRICES)
    assert week.summary["jobs"] == 0 and week.summary["evaluation_grades"] == n
    assert "Evaluation runs (grader evaluate) graded another 200 essays" in summary_paragraph(week)

    # a second, exact run, compared with the noisy one
    exact = run_main("evaluate", "run", "syn", "--label", "exact", "--concurrency", "20", env=env)
    assert exact.returncode == 0, exact.stderr
    compared = run_main("evaluate", "compare", "noisy", "exact", "--json")
    assert compared.returncode == 0, compared.stderr
    both = json.loads(compared.stdout)
    exact_thesis = next(t for t in both["b"]["targets"] if t["target"] == "thesis")
    assert exact_thesis["qwk"] == 1.0 and exact_thesis["exact"] == 1.0
    text = run_main("evaluate", "compare", "noisy", "exact").stdout
    assert "thesis: QWK [95%]" in text and "1.00 [1.00, 1.00]" in text and "SIMULATED" in text
    missing = run_main("evaluate", "compare", "noisy", "nope")
    assert missing.returncode == 1 and "no evaluation run with label or id 'nope'" in missing.stderr


def test_anchors_are_recorded_on_the_grades_and_the_simulator_shows_them_helping(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    _synthetic_set(tmp_path / "set.csv", 120, seed=5)
    env = {**NO_MODEL, "GRADER_REPORTS_DIR": str(tmp_path / "reports")}
    assert (
        run_main("evaluate", "import", str(tmp_path / "set.csv"), "--name", "syn").returncode == 0
    )
    noise = ["--simulate-off-by-one", "0.6", "--simulate-anchored-off-by-one", "0.1"]
    runs = {}
    for label, extra in (("plain", []), ("anchored", ["--anchors", str(ANCHORS)])):
        done = run_main(
            "evaluate",
            "run",
            "syn",
            "--label",
            label,
            "--concurrency",
            "20",
            "--json",
            *noise,
            *extra,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        runs[label] = json.loads(done.stdout)
    plain, anchored = ({t["target"]: t for t in runs[k]["targets"]} for k in runs)
    for criterion in CRITERIA:  # 10% of scores off by one instead of 60%
        assert anchored[criterion]["qwk"] > plain[criterion]["qwk"], criterion
        assert anchored[criterion]["exact"] > plain[criterion]["exact"] + 0.3, criterion
    assert runs["anchored"]["settings"]["anchors"] == 3
    # every grade of a run names the prompt it came from: the anchored rubric's, not the plain
    rubric = load_rubric()
    with_anchors = rubric.with_anchors(evaluation.load_anchors(ANCHORS, rubric))
    assert runs["anchored"]["prompt_versions"] == [
        prompt_version(system_prompt(with_anchors, 3000))
    ]
    assert runs["plain"]["prompt_versions"] == [prompt_version(system_prompt(rubric, 3000))]
