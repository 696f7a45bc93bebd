"""Loading a rubric: a malformed one is refused with the reason."""

from __future__ import annotations

import pytest

from grader.errors import RubricError
from grader.grading.rubric import load_rubric


def test_malformed_rubric_is_refused_with_the_reason(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[criteria]]\nkey = "Bad Key"\nname = "n"\ndescription = "d"\n')
    with pytest.raises(RubricError, match=r"criteria\.0"):
        load_rubric(bad)
    yaml = tmp_path / "rubric.yaml"
    yaml.write_text("name: x\n")
    with pytest.raises(RubricError, match=r"must be a \.toml or \.json"):
        load_rubric(yaml)
