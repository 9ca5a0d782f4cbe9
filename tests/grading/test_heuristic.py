"""The heuristic grader: deterministic, documented, drawing its reasons from the trace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from debugtrace import parse_trace
from debugtrace.grading.heuristic import HeuristicGrader
from debugtrace.grading.prompt import render_validation
from debugtrace.results import Grade, Validation
from debugtrace.testing import UNTESTED_REASON, GraderContract, example_validation
from support import DATA
from support.strategies import traces

EXAMPLE = json.loads((DATA / "minimal-trace.json").read_text())


class TestHeuristicGrader(GraderContract):
    @pytest.fixture
    def grader(self) -> HeuristicGrader:
        return HeuristicGrader()


def grade(doc: dict[str, Any], validation: Validation | None) -> Grade:
    return HeuristicGrader().grade(parse_trace(doc), validation)


def test_the_example_trace_gets_strengths_and_weaknesses_from_its_content() -> None:
    g = grade(EXAMPLE, example_validation(True))
    assert g.score == 4
    assert "reproduced the failure before the first edit" in g.strengths
    assert "stated a specific hypothesis before editing" in g.strengths
    # The example never re-ran the tests after its edit: that is its weak spot.
    assert g.rubric["verification"].score == 3
    assert g.rubric["calibration"].reason == "final confidence 0.85; the fix validated"
    assert g.grader == "heuristic" and g.rubric_version == "heuristic-1"


def test_high_confidence_in_a_failed_fix_scores_low() -> None:
    g = grade(EXAMPLE, example_validation(False))
    assert g.score <= 2
    assert g.rubric["calibration"].score == 1
    assert any("did not validate" in w for w in g.weaknesses)
    assert any("confidence" in r for r in g.recommendations)


def test_editing_blind_is_called_out() -> None:
    doc = {**EXAMPLE, "events": [e for e in EXAMPLE["events"] if e["type"] == "edit"]}
    g = grade(doc, example_validation(True))
    assert g.rubric["reproduction"].score == 1
    assert "Reproduce the bug with a failing command or test before the first edit." in (
        g.recommendations
    )


def test_breaking_a_test_caps_minimality() -> None:
    v = example_validation(True).model_copy(
        update={"pass_to_fail": ["t::x"], "fix_validated": False}
    )
    g = grade(EXAMPLE, v)
    assert g.rubric["fix_minimality"].score <= 2
    assert "breaks 1 passing test(s)" in g.rubric["fix_minimality"].reason


@settings(max_examples=100, deadline=None)
@given(doc=traces)
def test_any_trace_gets_a_valid_grade_and_always_the_same_one(doc: dict[str, Any]) -> None:
    trace = parse_trace(json.loads(json.dumps(doc)))
    for v in (None, example_validation(True), example_validation(False), example_validation(None)):
        first = HeuristicGrader().grade(trace, v)
        again = HeuristicGrader().grade(trace, v)
        assert 1 <= first.score <= 5
        assert first.model_dump(exclude={"duration_s"}) == again.model_dump(exclude={"duration_s"})


def test_an_untested_fix_is_graded_like_one_without_a_verdict_never_like_a_failed_one() -> None:
    untested = grade(EXAMPLE, example_validation(None))
    unknown = grade(EXAMPLE, None)
    failed = grade(EXAMPLE, example_validation(False))
    assert untested.rubric == unknown.rubric
    assert untested.score == unknown.score > failed.score
    assert untested.score <= 3  # unverified: capped as a fix whose tests did not run
    assert f"the fix could not be tested ({UNTESTED_REASON})" in untested.summary
    assert not any("did not validate" in w for w in untested.weaknesses)


def test_held_out_expectations_reach_the_model_prompt() -> None:
    v = example_validation(False).model_copy(
        update={"expected_fail_to_pass": ["t::a", "t::b"], "missing_expected": ["t::b"]}
    )
    text = render_validation(v)
    assert "Held-out tests expected to go from failing to passing: 1 of 2 did; missing: t::b" in (
        text
    )
