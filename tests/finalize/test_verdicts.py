"""Verdicts finalize can stand behind: "could not test" when the tests gave none, held-out tests,
and a history in which a later failure never replaces a verdict.

Each test finalizes the calc example (a real git repository, the local sandbox, a real test
environment) and reads what was stored.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.calc_repo import example_trace, git, make_calc_repo

TEST_PATCH = """\
diff --git a/tests/test_zero.py b/tests/test_zero.py
new file mode 100644
--- /dev/null
+++ b/tests/test_zero.py
@@ -0,0 +1,8 @@
+import pytest
+
+from calc import divide
+
+
+def test_zero_is_a_value_error():
+    with pytest.raises(ValueError, match="division by zero"):
+        divide(2, 0)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    make_calc_repo(tmp_path / "calc")
    return tmp_path / "calc"


@pytest.fixture
def collector(settings: Settings) -> Iterator[Collector]:
    s = settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    with Collector(settings=s) as c:
        yield c


def test_a_module_the_environment_lacks_is_could_not_test_not_not_validated(
    repo: Path, collector: Collector
) -> None:
    # the test file imports a package no dependency file declares
    (repo / "tests" / "test_calc.py").write_text(
        "import yaml_not_declared\n" + (repo / "tests" / "test_calc.py").read_text()
    )
    git(repo, "commit", "-qam", "an undeclared import")
    trace = collector.submit(example_trace(repo))
    done = collector.finalize(str(trace.id))
    tests = next(s for s in done.result.stages if s.name == "tests")
    v = done.result.validation
    assert tests.status == "failed"
    assert tests.message.startswith("could not test: tests/test_calc.py could not be collected")
    assert v is not None and v.fix_validated is None
    assert v.could_not_test and "No module named 'yaml_not_declared'" in v.could_not_test
    assert v.verdict.startswith("could not test: ")
    # neither validated nor "not validated": left out of datasets filtered on the verdict
    ids = [t.id for t in collector.iter_traces(validated_only=True)]
    assert trace.id not in ids


def test_an_environment_that_cannot_be_built_is_could_not_test(
    repo: Path, collector: Collector
) -> None:
    # a run-time dependency released as an sdist only: never built on the host
    (repo / "setup.cfg").write_text("[options]\ninstall_requires = docopt==0.6.2\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "deps")
    trace = collector.submit(example_trace(repo))
    v = collector.finalize(str(trace.id)).result.validation
    assert v is not None and v.fix_validated is None
    assert v.could_not_test and v.could_not_test.startswith(
        "the test environment could not be built: "
    )
    assert "docopt" in v.could_not_test


def test_held_out_tests_validate_a_fix_that_wrote_no_test(repo: Path, collector: Collector) -> None:
    doc = example_trace(repo)
    doc["held_out"] = {
        "test_patch": TEST_PATCH,
        "fail_to_pass": ["tests/test_zero.py::test_zero_is_a_value_error"],
    }
    trace = collector.submit(doc)
    v = collector.finalize(str(trace.id)).result.validation
    assert v is not None and v.test_patch
    assert "tests/test_zero.py::test_zero_is_a_value_error" in v.fail_to_pass
    assert (v.missing_expected, v.fix_validated) == ([], True)


def test_an_expected_fail_to_pass_test_that_did_not_is_not_validated(
    repo: Path, collector: Collector
) -> None:
    doc = example_trace(repo)
    expected = ["tests/test_zero.py::test_zero_is_a_value_error", "tests/test_calc.py::test_divide"]
    doc["held_out"] = {"test_patch": TEST_PATCH, "fail_to_pass": expected}
    trace = collector.submit(doc)
    v = collector.finalize(str(trace.id)).result.validation
    assert v is not None
    assert v.missing_expected == ["tests/test_calc.py::test_divide"]  # it passed before too
    assert v.fix_validated is False


def test_a_held_out_patch_that_does_not_apply_is_could_not_test(
    repo: Path, collector: Collector
) -> None:
    doc = example_trace(repo)
    doc["held_out"] = {"test_patch": TEST_PATCH.replace("/dev/null", "a/tests/nope.py")}
    trace = collector.submit(doc)
    v = collector.finalize(str(trace.id)).result.validation
    assert v is not None and v.fix_validated is None
    assert v.could_not_test and "held-out test patch does not apply" in v.could_not_test


def test_a_later_finalize_that_fails_before_the_tests_keeps_the_verdict(
    repo: Path, collector: Collector, tmp_path: Path
) -> None:
    trace = collector.submit(example_trace(repo))
    tid = str(trace.id)
    first = collector.finalize(tid).result
    assert first.validation is not None and first.validation.fix_validated is True
    # the repository becomes unreachable (and no mirror is left to fall back on)
    shutil.rmtree(repo)
    shutil.rmtree(collector.settings.data_dir / "mirrors", ignore_errors=True)
    again = collector.finalize(tid).result
    assert again.validation is not None and again.validation.fix_validated is True
    assert again.finalized_at == first.finalized_at  # the complete run stays the verdict
    (failed,) = again.history
    workspace = failed.stages[0]
    assert (workspace.name, workspace.status) == ("workspace", "failed")
    assert [t.id for t in collector.iter_traces(validated_only=True)] == [trace.id]


def test_a_later_complete_run_becomes_the_verdict_and_the_earlier_one_history(
    repo: Path, collector: Collector
) -> None:
    tid = str(collector.submit(example_trace(repo)).id)
    first = collector.finalize(tid).result
    second = collector.finalize(tid).result
    assert second.finalized_at is not None and first.finalized_at is not None
    assert second.finalized_at > first.finalized_at
    assert [r.finalized_at for r in second.history] == [first.finalized_at]
    assert second.history[0].history == []  # runs do not nest


def test_a_run_without_held_out_tests_never_replaces_one_with_them() -> None:
    from datetime import UTC, datetime

    from debugtrace.results import TraceResult, Validation

    def run(day: int, validated: bool, held_out: bool) -> TraceResult:
        v = Validation(fix_validated=validated, test_patch=held_out)
        return TraceResult(validation=v, finalized_at=datetime(2026, 1, day, tzinfo=UTC))

    # the operator checked the fix against held-out tests: not validated
    result = TraceResult().with_run(run(1, validated=False, held_out=True))
    # the trace's owner finalizes again without them: their own test passes
    result = result.with_run(run(2, validated=True, held_out=False))
    assert result.validation is not None and result.validation.fix_validated is False
    assert [r.finalized_at.day for r in result.history if r.finalized_at] == [2]
    # a later run against held-out tests is the verdict again
    result = result.with_run(run(3, validated=True, held_out=True))
    assert result.finalized_at is not None and result.finalized_at.day == 3
