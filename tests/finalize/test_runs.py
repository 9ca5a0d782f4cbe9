"""A test run that gives no verdict says why ("could not test"), never "not validated".

``check`` reads one run's result into per-test outcomes or raises ``CouldNotTest``;
``judge_broken`` decides what a test file that could not be collected means.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugtrace.errors import CouldNotTest
from debugtrace.finalize.runs import JUNIT, REPORT, check, expand, judge_broken
from debugtrace.finalize.testresults import Report
from debugtrace.sandbox import ProjectSpec, ResourceLimits, RunResult
from debugtrace.sandbox.projects import PYTEST

PY = ProjectSpec(kind="python", test_command=PYTEST, report_format="junit")
LIMITS = ResourceLimits(timeout_s=60)


def junit(*cases: str) -> bytes:
    return (
        f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>'.encode()
    )


PASSING = '<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py"/>'
BROKEN = (
    '<testcase classname="" name="tests.test_b" file="tests/test_b.py">'
    '<error message="collection failure">Traceback ...\n'
    "E   ModuleNotFoundError: No module named 'dateutil'</error></testcase>"
)


def outcome(res: RunResult, spec: ProjectSpec = PY, side: str = "after") -> Report:
    return check(res, spec, Path("/nonexistent"), expand(spec.test_command, "python"), side, LIMITS)


def test_a_normal_pytest_run_gives_its_tests() -> None:
    res = RunResult(1, "1 failed", 1.0, files={JUNIT: junit(PASSING)})
    assert outcome(res).outcomes == {"tests/test_a.py::test_ok": "passed"}


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (RunResult(None, "", 60.0, timed_out=True), "the after run timed out after 60s"),
        (RunResult(None, "", 1.0, limit_hit="disk"), "passed the sandbox's disk limit"),
        (
            RunResult(127, "sh: 1: jest: not found\n", 0.1),
            "the test runner is missing: sh: 1: jest: not found",
        ),
        (
            RunResult(1, "/venv/bin/python: No module named pytest\n", 0.1),
            "the test runner is missing",
        ),
        (
            RunResult(4, "ERROR: usage: error: unrecognized arguments: --cov\n", 0.3),
            "pytest was used wrongly (a usage or configuration error) (exit 4): ERROR: usage",
        ),
        (RunResult(5, "no tests ran in 0.01s\n", 0.3), "pytest collected no tests (exit 5)"),
        (RunResult(3, "INTERNALERROR> boom\n", 0.3), "pytest hit an internal error"),
        (RunResult(1, "Segmentation fault\n", 0.3), "wrote no test report (exit 1): Segmentation"),
        (RunResult(0, "", 0.3, files={JUNIT: junit()}), "ran no tests (exit 0)"),
        (RunResult(0, "", 0.3, files={JUNIT: b"<oops"}), "unreadable JUnit report"),
        (
            RunResult(0, "", 0.3, files={JUNIT: junit(PASSING, PASSING)}),
            "two tests in the report have the same id 'tests/test_a.py::test_ok'",
        ),
    ],
)
def test_a_run_without_a_verdict_says_why(result: RunResult, reason: str) -> None:
    with pytest.raises(CouldNotTest, match=None) as err:
        outcome(result)
    assert reason in str(err.value)


def test_unittest_finding_no_tests_could_not_test() -> None:
    spec = ProjectSpec(
        kind="python", test_command=("python", "-m", "unittest"), report_format="unittest"
    )
    with pytest.raises(CouldNotTest, match="unittest found no tests"):
        outcome(RunResult(5, "Ran 0 tests\n\nNO TESTS RAN\n", 0.1), spec)


def test_a_node_runner_that_wrote_no_report_could_not_test() -> None:
    spec = ProjectSpec(kind="node", test_command=("jest", "--json"), report_format="jest")
    with pytest.raises(CouldNotTest, match="wrote no test report"):
        outcome(RunResult(1, "Cannot find module 'jest'\n", 0.1), spec)
    assert REPORT == ".debugtrace-report.json"


def test_a_file_that_cannot_be_collected_after_the_edits_could_not_test() -> None:
    after = outcome(RunResult(1, "", 1.0, files={JUNIT: junit(PASSING, BROKEN)}))
    assert after.broken == {"tests/test_b.py": "ModuleNotFoundError: No module named 'dateutil'"}
    with pytest.raises(CouldNotTest) as err:
        judge_broken(Report(), after, set())
    assert str(err.value) == (
        "tests/test_b.py could not be collected after the edits: "
        "ModuleNotFoundError: No module named 'dateutil'"
    )


def test_a_file_the_trace_did_not_touch_that_cannot_be_collected_before_could_not_test() -> None:
    before = Report({"tests/test_a.py::test_ok": "passed"}, {"tests/test_b.py": "ImportError: x"})
    after = Report({"tests/test_a.py::test_ok": "passed", "tests/test_b.py::test_y": "passed"})
    with pytest.raises(CouldNotTest, match=r"tests/test_b\.py could not be collected before"):
        judge_broken(before, after, {"tests/test_other.py"})


def test_a_new_regression_test_that_cannot_import_before_the_fix_fails_before() -> None:
    # the held-out test imports a name the fix adds: its module fails to import unfixed
    before = Report({"tests/test_a.py::test_ok": "passed"}, {"tests/test_b.py": "ImportError: x"})
    after = Report(
        {
            "tests/test_a.py::test_ok": "passed",
            "tests/test_b.py::test_new[1]": "passed",
            "tests/test_b.py::TestC::test_z": "passed",
        }
    )
    assert judge_broken(before, after, {"tests/test_b.py"}) == {
        "tests/test_a.py::test_ok": "passed",
        "tests/test_b.py::test_new[1]": "error",
        "tests/test_b.py::TestC::test_z": "error",
    }


def test_results_read_from_output_whose_middle_was_cut_could_not_test() -> None:
    # unittest -v prints a line per test: with the middle of the output gone, so are tests
    spec = ProjectSpec(
        kind="python", test_command=("python", "-m", "unittest"), report_format="unittest"
    )
    kept = "test_a (t.T.test_a) ... ok\n[... cut ...]\ntest_z (t.T.test_z) ... ok\n"
    cut = RunResult(0, kept, 1.0, output_bytes=LIMITS.output_bytes + 1)
    with pytest.raises(CouldNotTest, match="per-test results cannot all be read"):
        outcome(cut, spec)
