"""Per-test results of node --test, jest, mocha and vitest, read from REAL reports.

Every report under tests/data/jsreports/ was written by a real run of the real runner with the
argv debugtrace builds (README.md there says how); none is hand-written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugtrace.errors import ReportError
from debugtrace.finalize.jsreports import (
    PARSERS,
    parse_jest,
    parse_mocha,
    parse_node_test,
    parse_vitest,
)

DATA = Path(__file__).parents[1] / "data" / "jsreports"
PROJECT = DATA / "project"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_node_test_ids_carry_file_and_suites() -> None:
    f = "test/node/calc.test.js"
    assert parse_node_test(read("node-test.jsonl"), PROJECT) == {
        "test/node/broken.test.js": "error",  # threw on load: the file as a whole
        f"{f}::calc > add > adds two numbers": "passed",
        f"{f}::calc > add > is wrong on purpose": "failed",
        f"{f}::calc > divide > divides": "passed",
        f"{f}::calc > divide > refuses zero": "passed",
        f"{f}::calc > divide > not ready": "skipped",
        f"{f}::calc > divide > someday": "skipped",  # todo
        f"{f}::a suite whose hook fails > never runs its body": "error",
        f"{f}::a suite whose hook fails": "error",  # the suite's own failure (its hook)
        f"{f}::top-level test with subtests > first step": "passed",
        f"{f}::top-level test with subtests > second step": "failed",
        f"{f}::top-level test with subtests": "failed",
        f"{f}::adds two numbers": "passed",
        "test/node/sub/unicode.test.mjs::déjà vu — ünïcode": "passed",
        "test/node/sub/unicode.test.mjs::adds two numbers": "passed",
    }


def test_jest_ids_from_absolute_paths_map_onto_the_worktree() -> None:
    # The report says /tmp/jsproj/test/jest/..., as a container says /workspace/...
    f = "test/jest/calc.test.js"
    assert parse_jest(read("jest.json"), PROJECT) == {
        f"{f}::calc > add > adds two numbers": "passed",
        f"{f}::calc > add > is wrong on purpose": "failed",
        f"{f}::calc > divide > divides": "passed",
        f"{f}::calc > divide > refuses zero": "passed",
        f"{f}::calc > divide > not ready": "skipped",
        f"{f}::calc > divide > someday": "skipped",
        f"{f}::adds two numbers": "passed",
        "test/jest/other.test.js::calc > déjà vu — ünïcode": "passed",
        "test/jest/broken.test.js": "error",
    }


def test_vitest_ids() -> None:
    f = "test/vitest/calc.test.mjs"
    assert parse_vitest(read("vitest.json"), PROJECT) == {
        "test/vitest/broken.test.mjs": "error",
        f"{f}::calc > add > adds two numbers": "passed",
        f"{f}::calc > add > is wrong on purpose": "failed",
        f"{f}::calc > divide > divides": "passed",
        f"{f}::calc > divide > refuses zero": "passed",
        f"{f}::calc > divide > not ready": "skipped",
        f"{f}::calc > divide > someday": "skipped",
        f"{f}::adds two numbers": "passed",
        "test/vitest/other.test.mjs::calc > déjà vu — ünïcode": "passed",
    }


def test_mocha_ids_keep_suite_boundaries() -> None:
    f = "test/mocha/calc.test.js"
    assert parse_mocha(read("mocha.json"), PROJECT) == {
        f"{f}::adds two numbers": "passed",
        f"{f}::calc > add > adds two numbers": "passed",
        f"{f}::calc > divide > divides": "passed",
        f"{f}::calc > divide > refuses zero": "passed",
        # suite "calc add" (one suite, a space in its name), not "calc" > "add"
        "test/mocha/other.test.js::calc add > déjà vu — ünïcode": "passed",
        f"{f}::calc > add > is wrong on purpose": "failed",
        f'{f}::a suite whose hook fails > "before all" hook for "never runs its body"': "error",
        f"{f}::calc > divide > not ready": "skipped",
        f"{f}::calc > divide > someday": "skipped",
    }


def test_same_name_in_two_files_or_suites_stays_two_tests() -> None:
    out = parse_node_test(read("node-test.jsonl"))
    same = [k for k in out if k.endswith("::adds two numbers") or k.endswith("> adds two numbers")]
    assert len(same) == 3


def test_a_duplicate_id_is_an_error_never_an_overwrite() -> None:
    with pytest.raises(ReportError, match="two results for the test id"):
        parse_node_test(read("node-test-duplicate.jsonl"))


def test_without_root_absolute_paths_stay_as_reported() -> None:
    out = parse_jest(read("jest.json"), None)
    assert "/tmp/jsproj/test/jest/broken.test.js" in out


@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize(
    "data", [b"", b"\xff\xfe", b"{not json", b"[1, 2]", b"[" * 100_000, b'{"x": 1}']
)
def test_unreadable_reports_are_report_errors(fmt: str, data: bytes) -> None:
    if fmt == "node-test" and data == b"":
        assert PARSERS[fmt](data, None) == {}  # no test ran: nothing to say
        return
    if fmt == "mocha" and data == b'{"x": 1}':
        assert PARSERS[fmt](data, None) == {}
        return
    with pytest.raises(ReportError):
        PARSERS[fmt](data, None)


def test_node_test_line_without_file_says_which_node_to_use() -> None:
    with pytest.raises(ReportError, match=r"Node 18\.19 or later"):
        parse_node_test(b'{"path": ["x"], "outcome": "pass"}\n')


def test_parsers_are_registered_by_report_format() -> None:
    assert set(PARSERS) == {"node-test", "jest", "mocha", "vitest"}
