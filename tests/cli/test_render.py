"""What the terminal shows of a finalize result (``debugtrace finalize`` / ``show``): the verdict
in people's words, the environment the tests ran in, held-out tests and the earlier runs."""

from __future__ import annotations

from datetime import UTC, datetime

from debugtrace.cli.render import render_result, render_trace
from debugtrace.model import HeldOut
from debugtrace.results import Grade, Stage, TraceResult
from debugtrace.testing import UNTESTED_REASON, example_validation, sample_trace

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TUESDAY = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def _stages(tests: str = "ok", message: str = "") -> list[Stage]:
    return [
        Stage(name="workspace", status="ok", message="cloned"),
        Stage(name="apply", status="ok", message="1 edit applied"),
        Stage(name="tests", status=tests, message=message),  # type: ignore[arg-type]
    ]


def _render(result: TraceResult, **fields: object) -> str:
    trace = sample_trace(id="a" * 24, result=result, **fields)
    return render_result(trace)


def test_a_validated_fix_says_yes_with_the_environment() -> None:
    out = _render(TraceResult(stages=_stages(), validation=example_validation(True)))
    assert "  fix validated: yes\n" in out
    assert "environment: python 3.12.3 (/usr/bin/python3.12); env py-1a2b3c (reused)" in out
    assert "fail_to_pass (1): tests/test_calc.py::test_divide_by_zero" in out


def test_a_fix_the_tests_refuted_says_no() -> None:
    out = _render(TraceResult(stages=_stages(), validation=example_validation(False)))
    assert "  fix validated: no\n" in out
    assert "could not test" not in out


def test_a_fix_that_could_not_be_tested_says_why_never_no() -> None:
    result = TraceResult(
        stages=_stages("failed", UNTESTED_REASON), validation=example_validation(None)
    )
    out = _render(result)
    assert f"  could not test: {UNTESTED_REASON}\n" in out
    assert "fix validated" not in out


def test_a_failed_tests_stage_without_a_validation_could_not_test() -> None:
    # As finalize recorded it before `could_not_test` existed.
    out = _render(TraceResult(stages=_stages("failed", "the test run reported no tests")))
    assert "  could not test: the test run reported no tests\n" in out


def test_held_out_tests_show_what_was_expected_and_what_is_missing() -> None:
    validation = example_validation(False).model_copy(
        update={
            "test_patch": True,
            "expected_fail_to_pass": ["tests/test_calc.py::test_a", "tests/test_calc.py::test_b"],
            "missing_expected": ["tests/test_calc.py::test_b"],
        }
    )
    out = _render(TraceResult(stages=_stages(), validation=validation))
    assert (
        "held-out tests: test patch applied to both runs; 1 of 2 expected fail_to_pass tests did"
        in out
    )
    assert "missing_expected (1): tests/test_calc.py::test_b" in out


def test_show_lists_the_trace_held_out_tests() -> None:
    held = HeldOut(
        test_patch="--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n@@ -1 +1,2 @@\n x\n+y\n",
        fail_to_pass=["tests/test_calc.py::test_divide_by_zero"],
    )
    out = render_trace(sample_trace(id="a" * 24, held_out=held, events=[]))
    assert "held-out tests:\n  test patch: 5 lines, files tests/test_calc.py\n" in out
    assert "must go from failing to passing (1): tests/test_calc.py::test_divide_by_zero" in out


def test_show_lists_earlier_runs_newest_first_and_says_when_the_latest_failed_early() -> None:
    graded = Grade(score=4, grader="heuristic", summary="s", rubric_version="r1")
    validated = TraceResult(
        stages=_stages(), validation=example_validation(True), grades=[graded], finalized_at=MONDAY
    )
    untested = TraceResult(
        stages=_stages("failed", UNTESTED_REASON),
        validation=example_validation(None),
        finalized_at=MONDAY.replace(hour=8),
    )
    gone = TraceResult(
        stages=[Stage(name="workspace", status="failed", message="repository not found")],
        finalized_at=TUESDAY,
    )
    result = untested.with_run(validated).with_run(gone)
    assert result.finalized_at == MONDAY  # the validated run stays the verdict
    out = render_trace(sample_trace(id="a" * 24, result=result, events=[]))
    assert (
        "  latest run of 2026-03-03 09:00:00 UTC: workspace failed: repository not found\n"
        "  the verdict stands from the run of 2026-03-02 09:00:00 UTC:\n"
    ) in out
    assert "  fix validated: yes\n" in out
    assert out.endswith(
        "earlier runs (2):\n"
        "  2026-03-03 09:00:00  workspace failed: repository not found\n"
        f"  2026-03-02 08:00:00  could not test: {UNTESTED_REASON}\n"
    )


def test_a_graded_earlier_run_shows_its_score() -> None:
    graded = Grade(score=2, grader="heuristic", summary="s", rubric_version="r1")
    old = TraceResult(
        stages=_stages(), validation=example_validation(False), grades=[graded], finalized_at=MONDAY
    )
    new = TraceResult(stages=_stages(), validation=example_validation(True), finalized_at=TUESDAY)
    out = _render(old.with_run(new))
    assert "latest run" not in out
    assert "  2026-03-02 09:00:00  not validated  score 2/5\n" in out
