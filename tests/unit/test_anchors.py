"""Anchor essays (scored examples in the prompt): they reach the system prompt within its
budget, change the prompt version, never follow the essay to grade; bad anchor files are one
line."""

from __future__ import annotations

from pathlib import Path

import pytest

import essay_grader
from grader import evaluation
from grader.errors import InvalidInputError
from grader.grading.rubric import load_rubric
from grader.model.prompt import anchors_prompt, build_messages, prompt_version, system_prompt

ANCHORS = Path(essay_grader.__file__).parent / "samples" / "evaluation" / "anchors.toml"


def test_anchors_reach_the_prompt_within_the_budget_and_change_the_prompt_version() -> None:
    rubric = load_rubric()
    anchored = rubric.with_anchors(evaluation.load_anchors(ANCHORS, rubric))
    assert len(anchored.anchors) == 3
    everything = system_prompt(anchored, 10_000)
    assert all(f"<<<EXAMPLE {n}>>>" in everything for n in (1, 2, 3))
    first = anchored.anchors[0]
    assert first.essay in everything and "thesis 9/10" in everything
    # a budget that holds the first example only (about 4 characters a token)
    first_only = anchored.with_anchors([anchored.definition()["anchors"][0]])
    one = system_prompt(anchored, len(anchors_prompt(first_only, 10_000)) // 4 + 5)
    assert "<<<EXAMPLE 1>>>" in one and "<<<EXAMPLE 2>>>" not in one
    assert system_prompt(anchored, 0) == system_prompt(rubric, 10_000)  # no room: no examples
    versions = {prompt_version(p) for p in (everything, one, system_prompt(rubric, 0))}
    assert len(versions) == 3
    # the essay to grade stays last, in the user message, after every example
    messages = build_messages(anchored, "The essay to grade.", 10_000)
    assert "<<<EXAMPLE" not in messages[1]["content"]
    assert "The essay to grade." not in messages[0]["content"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[anchors]]\nessay = "x"\nscores = { thesis = 11, evidence = 1, organization = 1, '
            "language = 1 }\n",
            "thesis 11 is outside 0-10",
        ),
        ('[[anchors]]\nessay = "x"\nscores = { thesis = 1 }\n', "must score exactly the criteria"),
        ("anchors = 3\n", "expected a non-empty list 'anchors'"),
        ("anchors = [\n", "cannot read anchors"),
    ],
    ids=["out-of-bounds", "missing-criteria", "not-a-list", "not-toml"],
)
def test_bad_anchors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "anchors.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as failure:
        evaluation.load_anchors(path, load_rubric())
    assert message in str(failure.value) and "\n" not in str(failure.value)
