"""Per-test results from a test run, and the before/after classification of a fix.

Readers: JUnit XML (pytest, Maven Surefire, jest-junit, ...), ``python -m unittest -v`` output,
Rust's libtest output (``cargo test``), ``go test -json``. When none applies, the run as a whole is
one pseudo-test named after the command, passed when it exits 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from debugtrace.errors import ReportError
from debugtrace.results import Validation

__all__ = ["classify", "parse_go_json", "parse_junit", "parse_libtest", "parse_unittest"]

Outcomes = dict[str, str]
"""test id -> passed | failed | error | skipped"""

PASSING = frozenset({"passed"})


def _node_id(classname: str, name: str, root: Path | None) -> str:
    """A pytest-style id: ``tests/test_calc.py::Class::test`` when the module file can be found."""
    parts = [p for p in classname.split(".") if p]
    if root is not None:
        for i in range(len(parts), 0, -1):
            candidate = Path(*parts[:i]).with_suffix(".py")
            if (root / candidate).is_file():
                return "::".join([candidate.as_posix(), *parts[i:], name])
    return f"{classname}::{name}" if classname else name


def parse_junit(xml: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from a JUnit XML report (one or many ``<testsuite>``s)."""
    from xml.etree import ElementTree

    try:
        tree = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ReportError(f"unreadable JUnit report: {exc}") from None
    out: Outcomes = {}
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        test_id = _node_id(case.get("classname", ""), name, root)
        if case.find("error") is not None:
            outcome = "error"
        elif case.find("failure") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        out[test_id] = outcome
    return out


_UNITTEST = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (.+)$", re.M)
_UNITTEST_OUTCOMES = {
    "ok": "passed",
    "FAIL": "failed",
    "ERROR": "error",
    "expected failure": "passed",
    "unexpected success": "failed",
}


def parse_unittest(output: str, root: Path | None = None) -> Outcomes:
    """Outcomes from ``python -m unittest -v`` output."""
    out: Outcomes = {}
    for name, where, verdict in _UNITTEST.findall(output):
        verdict = verdict.strip()
        outcome = "skipped" if verdict.startswith("skipped") else _UNITTEST_OUTCOMES.get(verdict)
        if outcome is None:
            continue
        # Python 3.11+ prints "test (module.Class.test)"; older versions "test (module.Class)".
        classname = where[: -len(name) - 1] if where.endswith("." + name) else where
        out[_node_id(classname, name, root)] = outcome
    return out


_LIBTEST = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", re.M)


def parse_libtest(output: str) -> Outcomes:
    """Outcomes from Rust's libtest (``cargo test``) output."""
    table = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}
    return {name: table[v] for name, v in _LIBTEST.findall(output)}


def parse_go_json(output: str) -> Outcomes:
    """Outcomes from ``go test -json`` output."""
    out: Outcomes = {}
    table = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("Test") and ev.get("Action") in table:
            out[f"{ev.get('Package', '')}::{ev['Test']}"] = table[ev["Action"]]
    return out


def classify(
    before: Mapping[str, str], after: Mapping[str, str], flaky: Iterable[str] = ()
) -> Validation:
    """Compare outcomes before and after the edits (SWE-bench's four classes plus added/removed).

    A test that did not exist before and passes after counts as fail_to_pass only if the
    before-run included it (the pipeline runs new test files against the unfixed code); otherwise
    it is listed in ``added``. Flaky tests are reported on their own and left out of the classes.
    ``fix_validated`` is true when at least one test went from failing to passing and none from
    passing to failing.
    """
    skip = set(flaky)
    v = Validation(flaky=sorted(skip))
    for test in sorted(set(before) | set(after)):
        if test in skip:
            continue
        if test not in before:
            v.added.append(test)
            continue
        if test not in after:
            v.removed.append(test)
            continue
        b, a = before[test], after[test]
        if "skipped" in (b, a):
            continue
        was, now = b in PASSING, a in PASSING
        target = {
            (False, True): v.fail_to_pass,
            (True, True): v.pass_to_pass,
            (True, False): v.pass_to_fail,
            (False, False): v.fail_to_fail,
        }[(was, now)]
        target.append(test)
    v.fix_validated = bool(v.fail_to_pass) and not v.pass_to_fail
    return v
