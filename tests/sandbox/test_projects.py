"""Built-in project detection and the test-result readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from debugtrace.finalize.testresults import (
    classify,
    parse_go_json,
    parse_junit,
    parse_libtest,
    parse_unittest,
)
from debugtrace.sandbox.projects import detect_project


@pytest.mark.parametrize(
    ("files", "kind", "first"),
    [
        ({"pyproject.toml": ""}, "python", "{python}"),
        ({"tests/test_x.py": ""}, "python", "{python}"),
        ({"package.json": '{"scripts": {"test": "jest"}}'}, "node", "jest"),
        ({"go.mod": "module x"}, "go", "go"),
        ({"Cargo.toml": ""}, "rust", "cargo"),
        ({"pom.xml": ""}, "maven", "mvn"),
        ({"Makefile": "all:\n\ttrue\ntest:\n\ttrue\n"}, "make", "make"),
    ],
)
def test_project_types_are_detected(
    tmp_path: Path, files: dict[str, str], kind: str, first: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    spec = detect_project(tmp_path)
    assert spec is not None
    assert (spec.kind, spec.test_command[0]) == (kind, first)


def test_nothing_recognisable_is_none(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("hi")
    (tmp_path / "package.json").write_text('{"scripts": {}}')
    assert detect_project(tmp_path) is None


def test_junit_ids_become_pytest_node_ids(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text("")
    xml = b"""<testsuites><testsuite>
      <testcase classname="tests.test_calc" name="test_ok"/>
      <testcase classname="tests.test_calc.TestDiv" name="test_zero"><failure/></testcase>
      <testcase classname="tests.test_calc" name="test_err"><error message="x"/></testcase>
      <testcase classname="tests.test_calc" name="test_skip"><skipped/></testcase>
      <testcase classname="Other" name="test_java"/>
    </testsuite></testsuites>"""
    assert parse_junit(xml, tmp_path) == {
        "tests/test_calc.py::test_ok": "passed",
        "tests/test_calc.py::TestDiv::test_zero": "failed",
        "tests/test_calc.py::test_err": "error",
        "tests/test_calc.py::test_skip": "skipped",
        "Other::test_java": "passed",
    }
    with pytest.raises(ValueError, match="unreadable JUnit report"):
        parse_junit(b"<not xml", tmp_path)


def test_unittest_verbose_output_is_read(tmp_path: Path) -> None:
    (tmp_path / "test_calc.py").write_text("")
    out = (
        "test_a (test_calc.CalcTest.test_a) ... ok\n"
        "test_b (test_calc.CalcTest) ... FAIL\n"
        "test_c (test_calc.CalcTest.test_c) ... skipped 'later'\n"
        "test_d (test_calc.CalcTest.test_d) ... ERROR\n"
    )
    assert parse_unittest(out, tmp_path) == {
        "test_calc.py::CalcTest::test_a": "passed",
        "test_calc.py::CalcTest::test_b": "failed",
        "test_calc.py::CalcTest::test_c": "skipped",
        "test_calc.py::CalcTest::test_d": "error",
    }


def test_cargo_and_go_outputs_are_read() -> None:
    cargo = (
        "test calc::tests::divide ... ok\ntest calc::tests::zero ... FAILED\ntest x ... ignored\n"
    )
    assert parse_libtest(cargo) == {
        "calc::tests::divide": "passed",
        "calc::tests::zero": "failed",
        "x": "skipped",
    }
    go = (
        '{"Action":"run","Package":"calc","Test":"TestDiv"}\n'
        '{"Action":"pass","Package":"calc","Test":"TestDiv"}\n'
        '{"Action":"fail","Package":"calc","Test":"TestZero"}\nnot json\n'
    )
    assert parse_go_json(go) == {"calc::TestDiv": "passed", "calc::TestZero": "failed"}


def test_classification_follows_swe_bench() -> None:
    before = {
        "a": "failed",
        "b": "passed",
        "c": "passed",
        "d": "error",
        "gone": "passed",
        "s": "skipped",
    }
    after = {
        "a": "passed",
        "b": "passed",
        "c": "failed",
        "d": "failed",
        "new": "passed",
        "s": "passed",
    }
    v = classify(before, after)
    assert (v.fail_to_pass, v.pass_to_pass, v.pass_to_fail, v.fail_to_fail) == (
        ["a"],
        ["b"],
        ["c"],
        ["d"],
    )
    assert (v.added, v.removed) == (["new"], ["gone"])
    assert v.fix_validated is False  # c broke
    assert classify({"a": "failed"}, {"a": "passed"}).fix_validated is True
    assert classify({"a": "passed"}, {"a": "passed"}).fix_validated is False  # nothing fixed


def test_flaky_tests_are_set_apart() -> None:
    v = classify({"a": "failed", "f": "failed"}, {"a": "passed", "f": "passed"}, flaky={"f"})
    assert v.flaky == ["f"] and v.fail_to_pass == ["a"]
