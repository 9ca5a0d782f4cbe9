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
    assert g.grader == "heuristic" and g.rubric_version == "heuristic-2"


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
    scores = {name: r.score for name, r in untested.rubric.items()}
    assert scores == {name: r.score for name, r in unknown.rubric.items()}
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


# -- test-first debugging, fix size, reproductions that exit 0, untested fixes -----------------
#
# The scenarios below are small but real-shaped sessions on one bug: `parse_version("1.0")` in a
# `semver_lite` package drops the trailing zero and returns (1,) instead of (1, 0).

TEST_FILE = "tests/test_version.py"
REGRESSION_TEST = """\
--- /dev/null
+++ b/tests/test_version.py
@@ -0,0 +1,9 @@
+from semver_lite import parse_version
+
+
+def test_parse_keeps_a_zero_minor_version():
+    assert parse_version("1.0") == (1, 0)
+
+
+def test_parse_three_parts():
+    assert parse_version("2.10.3") == (2, 10, 3)
"""
SOURCE_FIX = """\
--- a/src/semver_lite/__init__.py
+++ b/src/semver_lite/__init__.py
@@ -4,4 +4,2 @@ def parse_version(text):
     parts = [int(p) for p in text.strip().split(".")]
-    while parts and parts[-1] == 0:
-        parts.pop()
     return tuple(parts)
"""
RED_RUN = "\n".join(
    [
        "1 failed, 1 passed in 0.04s",
        "FAILED tests/test_version.py::test_parse_keeps_a_zero_minor_version"
        " - AssertionError: assert (1,) == (1, 0)",
        "    E       AssertionError: assert (1,) == (1, 0)",
        "    E         Right contains one more item: 0",
        "    E         Use -v to get more diff",
        "    at tests/test_version.py:5",
        "",
    ]
)
"""The pytest plugin's summary of the red run (its ``output``)."""
GREEN_RUN = "2 passed in 0.03s\n"
FAILING_TEST = "tests/test_version.py::test_parse_keeps_a_zero_minor_version"


def session(*events: dict[str, Any]) -> dict[str, Any]:
    """A trace of ``events``, one second apart."""
    stamped = [
        {**e, "timestamp": f"2026-12-01T10:00:{i:02d}Z"} for i, e in enumerate(events, start=1)
    ]
    return {
        "developer_id": "dev_7",
        "repo_url": "https://github.com/example/semver-lite",
        "bug_description": 'parse_version("1.0") returns (1,) instead of (1, 0)',
        "events": stamped,
    }


def edit(file: str, diff: str) -> dict[str, Any]:
    return {"type": "edit", "details": {"file": file, "diff": diff}}


def run(command: str, output: str, exit_code: int | None) -> dict[str, Any]:
    return {
        "type": "command",
        "details": {"command": command, "output": output, "exit_code": exit_code},
    }


def think(text: str, kind: str | None = None, confidence: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"text": text, "reasoning_type": kind}
    if confidence is not None:
        details["confidence"] = confidence
    return {"type": "reasoning", "details": details}


def verdict_of(g: Grade) -> object:
    """What the grade says of the tests (an extra field: ``Grade`` keeps extras)."""
    return (g.model_extra or {}).get("test_verdict")


def validated() -> Validation:
    return Validation(
        base_sha="0" * 40,
        fail_to_pass=[FAILING_TEST],
        pass_to_pass=["tests/test_version.py::test_parse_three_parts"],
        fix_validated=True,
    )


# What `pytest --debugtrace` records when you write the regression test first: the uncommitted
# test as an edit, the red run, the fix as an edit, the green run (no notes, no hypothesis).
PLUGIN_SESSION = session(
    edit(TEST_FILE, REGRESSION_TEST),
    run("pytest --debugtrace tests/test_version.py", RED_RUN, 1),
    edit("src/semver_lite/__init__.py", SOURCE_FIX),
    run("pytest --debugtrace tests/test_version.py", GREEN_RUN, 0),
)


def test_a_failing_regression_test_written_before_the_fix_is_a_reproduction() -> None:
    g = grade(PLUGIN_SESSION, validated())
    assert g.rubric["reproduction"].score == 5
    assert g.rubric["reproduction"].reason == "wrote a test and saw it fail before the fix"
    # The red run came before the first edit to the code, not "after editing".
    assert g.rubric["evidence_gathering"].score == 3
    assert g.rubric["verification"].score == 5
    assert g.score == 4  # not 5: no reasoning was recorded (hypothesis_quality 1)
    assert "edited without reproducing the bug first" not in g.weaknesses
    assert verdict_of(g) == "validated"


def test_notes_given_with_the_red_run_count_as_reasoning_before_the_fix() -> None:
    doc = session(
        edit(TEST_FILE, REGRESSION_TEST),
        think(
            "parse_version strips every trailing zero, so 1.0 loses its minor part",
            "hypothesis",
            "medium",
        ),
        run("pytest --debugtrace tests/test_version.py", RED_RUN, 1),
        run("git log -L4,8:src/semver_lite/__init__.py --oneline", "3f2c1d0 Normalise 1.0.0", 0),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
        run("pytest --debugtrace tests/test_version.py", GREEN_RUN, 0),
        think("The trailing-zero loop was the cause; both tests pass", "conclusion", "high"),
    )
    g = grade(doc, validated())
    assert {n: r.score for n, r in g.rubric.items()} == {
        "hypothesis_quality": 5,
        "evidence_gathering": 5,
        "reproduction": 5,
        "fix_minimality": 5,
        "verification": 5,
        "calibration": 5,
    }
    assert g.score == 5


def test_a_test_written_but_not_run_before_the_fix_is_not_a_reproduction() -> None:
    doc = session(
        edit(TEST_FILE, REGRESSION_TEST),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
        run("pytest tests/test_version.py", GREEN_RUN, 0),
    )
    g = grade(doc, validated())
    assert g.rubric["reproduction"].score == 1
    assert g.rubric["reproduction"].reason == "wrote a test but did not run it before the fix"


def test_test_lines_are_not_fix_size() -> None:
    forty_lines = "".join(
        f"+def test_parse_{n}():\n+    assert parse_version('{n}.0') == ({n}, 0)\n"
        for n in range(20)
    )
    big_test = f"--- /dev/null\n+++ b/{TEST_FILE}\n@@ -0,0 +1,40 @@\n{forty_lines}"
    doc = session(
        edit(TEST_FILE, big_test),
        run("pytest tests/test_version.py -q", RED_RUN, 1),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
        run("pytest tests/test_version.py -q", "21 passed in 0.05s\n", 0),
    )
    g = grade(doc, validated())
    assert g.rubric["fix_minimality"].score == 5
    assert g.rubric["fix_minimality"].reason == (
        "the fix changes 2 lines in 1 file (and 40 test lines, not counted)"
    )


def test_when_only_tests_change_the_test_edit_is_the_fix() -> None:
    # The bug was in the test itself: its lines are the fix, and editing it starts the fix.
    wrong_test = REGRESSION_TEST.replace("(1, 0)", "(1, 0, 0)")
    doc = session(
        run("pytest tests/test_version.py", RED_RUN, 1),
        edit(TEST_FILE, wrong_test),
    )
    g = grade(doc, validated())
    assert g.rubric["reproduction"].reason == "reproduced the failure before the first edit"
    assert g.rubric["fix_minimality"].reason == "the fix changes 9 lines in 1 file"


def test_a_reproduction_that_exits_0_counts_when_the_next_reasoning_calls_the_output_wrong() -> (
    None
):
    doc = session(
        think("parse_version may strip the zero minor version", "hypothesis"),
        run(
            "python -c 'from semver_lite import parse_version; print(parse_version(\"1.0\"))'",
            "(1,)\n",
            0,
        ),
        think('That\'s the bug: parse_version("1.0") returns (1,) instead of (1, 0).'),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
    )
    g = grade(doc, validated())
    assert g.rubric["reproduction"].score == 5
    assert g.rubric["reproduction"].reason.startswith(
        "reproduced the bug before the fix: the output of `python -c"
    )


@pytest.mark.parametrize(
    "reasoning",
    [
        "Prints (1,). That's wrong, it should be (1, 0).",
        "(1,) -- should be (1, 0)",
        "Expected (1, 0) but got (1,).",
        "Bug confirmed: the zero minor version is dropped.",
        "Reproduced.",
    ],
)
def test_phrases_that_call_the_output_wrong(reasoning: str) -> None:
    doc = session(
        run("python repro.py", "parse_version('1.0') = (1,)\n", 0),
        think(reasoning),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
    )
    assert grade(doc, validated()).rubric["reproduction"].score == 5


@pytest.mark.parametrize(
    "reasoning",
    [
        "Prints (1, 0). Nothing wrong here, so the parser is not the culprit.",
        "I don't see anything unexpected in the output.",
        "My hypothesis was wrong: parsing is fine.",
        "The fix should be small.",
        "Could not reproduce it with 1.0.",
    ],
)
def test_phrases_that_do_not(reasoning: str) -> None:
    doc = session(
        run("python repro.py", "parse_version('1.0') = (1, 0)\n", 0),
        think(reasoning),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
    )
    g = grade(doc, validated())
    assert g.rubric["reproduction"].score == 3
    assert g.rubric["reproduction"].reason == "ran commands first, but none showed the failure"


def test_only_the_reasoning_right_after_the_command_counts() -> None:
    # A later "that's wrong" is about something else: another command came in between.
    doc = session(
        run("python repro.py", "parse_version('1.0') = (1, 0)\n", 0),
        run("grep -n 'parts.pop' src/semver_lite/__init__.py", "5:        parts.pop()\n", 0),
        think("That loop is wrong: it should be removed."),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
    )
    assert grade(doc, validated()).rubric["reproduction"].score == 3


def test_calling_code_read_with_cat_wrong_is_a_diagnosis_not_a_reproduction() -> None:
    doc = session(
        run("cat src/semver_lite/__init__.py", "def parse_version(text):\n    ...\n", 0),
        think("This loop is wrong: `1.0` should be `(1, 0)`."),
        edit("src/semver_lite/__init__.py", SOURCE_FIX),
    )
    assert grade(doc, validated()).rubric["reproduction"].score == 3


def test_a_fix_that_was_not_tested_and_one_that_could_not_be_tested_say_which() -> None:
    could_not = Validation(
        base_sha="0" * 40,
        fix_validated=None,
        could_not_test="collection errors: ModuleNotFoundError: No module named 'semver_lite'",
    )
    not_tested = grade(PLUGIN_SESSION, None)
    untestable = grade(PLUGIN_SESSION, could_not)

    assert "the fix was not tested" in not_tested.summary
    assert "could not be tested" not in not_tested.summary
    assert not_tested.rubric["verification"].reason == (
        "re-ran commands after the fix; it was not tested"
    )
    assert verdict_of(not_tested) == "not tested"

    assert (
        "the fix could not be tested (collection errors: ModuleNotFoundError: "
        "No module named 'semver_lite')" in untestable.summary
    )
    assert untestable.rubric["verification"].reason == (
        "re-ran commands after the fix; it could not be tested"
    )
    assert verdict_of(untestable) == "could not test"

    validated_grade = grade(PLUGIN_SESSION, validated())
    for g in (not_tested, untestable):
        assert g.score <= 3 < validated_grade.score  # capped, below the validated fix
        assert g.rubric["verification"].score == 3
        assert "did not validate" not in g.summary


def test_the_test_verdict_survives_a_round_trip_through_json() -> None:
    g = grade(PLUGIN_SESSION, None)
    again = Grade.model_validate_json(g.model_dump_json())
    assert again.model_dump()["test_verdict"] == "not tested"


def test_a_failed_fix_says_so_and_is_capped_at_2() -> None:
    failed = Validation(base_sha="0" * 40, fail_to_fail=[FAILING_TEST], fix_validated=False)
    g = grade(PLUGIN_SESSION, failed)
    assert g.score <= 2
    assert "the fix did not validate" in g.summary
    assert verdict_of(g) == "not validated"


def test_llm_graders_are_told_the_same_rules() -> None:
    from debugtrace.grading.prompt import SYSTEM

    text = " ".join(SYSTEM.split())
    assert "Writing a regression test first and running it to see it fail" in text
    assert "test lines do not count toward the size of the fix" in text
    assert "exits 0 but whose output the developer then calls wrong" in text
    assert "not tested (no test verdict) or could not be tested" in text
    assert "the fix was not tested" in render_validation(None)
    assert "the fix could not be tested: " in render_validation(example_validation(None))
