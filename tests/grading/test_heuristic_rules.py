"""The heuristic grader's two classifiers, as tables: which files are tests, and which reasoning
calls a command's output wrong."""

from __future__ import annotations

import pytest

from debugtrace.grading.heuristic import is_test_file, says_output_is_wrong


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_version.py",
        "tests/unit/helpers.py",  # anything under tests/
        "src/pkg/tests/data.json",
        "test_version.py",
        "pkg/version_test.py",
        "conftest.py",
        "internal/parse/parse_test.go",
        "internal/parse/testdata/golden.txt",
        "web/src/version.test.ts",
        "web/src/Version.test.jsx",
        "web/src/version.spec.js",
        "web/src/__tests__/version.js",
        "src/test/java/org/example/VersionTest.java",
        "core/src/test/kotlin/VersionTest.kt",
        "test/version.js",  # a top-level test/ (mocha, minitest)
        "spec/version_spec.rb",
        "lib\\tests\\test_version.py",  # Windows separators
        "./tests/test_version.py",
        "polls/tests.py",  # Django's layout
        "lib/VersionTest.java",  # JUnit names outside src/test
        "app/VersionIT.java",
    ],
)
def test_test_files(path: str) -> None:
    assert is_test_file(path)


@pytest.mark.parametrize(
    "path",
    [
        "src/semver_lite/__init__.py",
        "calc.py",
        "src/main/java/org/example/Version.java",
        "django/test/client.py",  # shipped code: test/ below the top is not a test directory
        "src/debugtrace/testing/__init__.py",
        "contest.py",
        "latest_version.py",
        "packaging/semver.spec",  # an RPM spec, not *.spec.*
        "src/attest.go",
        "polls/models.py",
        "src/main/java/org/example/Contest.java",
        "src/main/java/org/example/TestUtils.java",
    ],
)
def test_source_files(path: str) -> None:
    assert not is_test_file(path)


@pytest.mark.parametrize(
    "text",
    [
        "That's wrong.",
        "Prints None, which is wrong.",
        "No, the output is wrong.",
        "Nothing crashed, but the result is incorrect.",
        "Unexpected: the list is empty.",
        "That is not right.",
        "That isn\u2019t correct.",
        "It should be 1.0.",
        "It should return `(1, 0)`.",
        "should raise ValueError, not return None",
        "Expected 1.0 but got None.",
        "expected (1, 0), got (1,)",
        'parse("1.0") returns None instead of 1.0',
        "Bug confirmed.",
        "This confirms the bug.",
        "Reproduced: the zero minor version is dropped.",
        "That reproduces the issue.",
    ],
)
def test_reasoning_that_calls_the_output_wrong(text: str) -> None:
    assert says_output_is_wrong(text)


@pytest.mark.parametrize(
    "text",
    [
        "Nothing wrong here.",
        "I don't see anything wrong with this.",
        "There is nothing obviously incorrect.",
        "No unexpected output.",
        "My hypothesis was wrong: the parser is fine.",
        "I was wrong about the cache.",
        "Could not reproduce it.",
        "The bug is not reproduced on main.",
        "I haven't reproduced it yet.",
        "The fix should be small.",
        "This should be fine.",
        "As expected, all tests pass.",
        "Use float() instead of int() in the fix.",
        "Looks correct to me.",
        "Let me try to reproduce it.",
        # plans, not observations
        "Let me write a script that reproduces the issue.",
        "Here is a test that reproduces it.",
        "I need to find out why the output is wrong.",
        "As expected, got the same output.",
        "I dont see anything wrong.",  # no apostrophe
    ],
)
def test_reasoning_that_does_not(text: str) -> None:
    assert not says_output_is_wrong(text)
