"""Per-test results from a test run, and the before/after classification of a fix.

Readers: JUnit XML (pytest, Maven Surefire, ...), ``python -m unittest -v`` output, Rust's libtest
output (``cargo test``), ``go test -json``, and the Node runners' JSON reports
(:mod:`.jsreports`). When none applies, the run as a whole is one pseudo-test named after the
command, passed when it exits 0.

Test ids are the runner's node ids: ``tests/test_x.py::Class::test[param]`` built from the report's
``file`` attribute (pytest writes it), ``test/x.test.js::suite > name`` for Node. Two tests with
the same id are an error (:class:`ReportError`), never merged. A test file that could not be
collected (an import error) is reported apart, in :attr:`Report.broken`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from debugtrace.errors import ReportError
from debugtrace.results import Validation

__all__ = [
    "Report",
    "classify",
    "parse_go_json",
    "parse_junit",
    "parse_libtest",
    "parse_unittest",
    "read_junit",
    "read_unittest",
]

Outcomes = dict[str, str]
"""test id -> passed | failed | error | skipped"""

PASSING = frozenset({"passed"})


@dataclass
class Report:
    """What one run's report says: each test's outcome, and the test files it could not
    collect (import errors), with why."""

    outcomes: Outcomes = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    """file (or module) -> the error's last line, for each test file that could not be
    collected: its tests did not run at all."""

    def add(self, test_id: str, outcome: str) -> None:
        """Record one test; a second test with the same id is a :class:`ReportError`."""
        if test_id in self.outcomes:
            raise ReportError(
                f"two tests in the report have the same id {test_id[:200]!r}: their results "
                "cannot be told apart"
            )
        self.outcomes[test_id] = outcome


_MODULE_HOMES = ("", "tests", "test", "src")
"""Where a dotted module name is looked for when it is not found from the root (unittest's
``-s tests`` names modules relative to that folder)."""


def _java_id(classname: str, name: str, root: Path) -> str | None:
    """``src/test/java/ex/CalcTest.java::Inner::test()`` for a JUnit class ``ex.CalcTest$Inner``
    whose source is in the Maven layout (of the root or of a module one level down)."""
    outer, *nested = classname.split("$")
    if not re.fullmatch(r"[\w.]+", outer):
        return None
    rel = "src/test/java/" + outer.replace(".", "/") + ".java"
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())[:200]):
        if (base / rel).is_file():
            file = (base / rel).relative_to(root).as_posix()
            return "::".join([file, *nested, name])
    return None


def _node_id(classname: str, name: str, root: Path | None) -> str:
    """A pytest-style id: ``tests/test_calc.py::Class::test`` when the module file can be found
    (``src/test/java/...java::test()`` for a JUnit class)."""
    parts = [p for p in classname.split(".") if p]
    if root is not None and classname and (root / "pom.xml").is_file():
        java = _java_id(classname, name, root)
        if java is not None:
            return java
    if root is not None:
        for home in _MODULE_HOMES:
            for i in range(len(parts), 0, -1):
                candidate = Path(home, *parts[:i]).with_suffix(".py")
                if (root / candidate).is_file():
                    return "::".join([candidate.as_posix(), *parts[i:], name])
    return f"{classname}::{name}" if classname else name


def _safe_file(name: str | None) -> str | None:
    """``name`` if it is a relative POSIX path inside the worktree, else None."""
    if not name or "\x00" in name or len(name) > 1000:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    return path.as_posix()


def _file_id(file: str, classname: str, name: str) -> str:
    """``file::Class::name``: the classname's module part (a dotted suffix of the file's
    path, as pytest writes it under any rootdir) is dropped, the class path kept."""
    parts = [p for p in classname.split(".") if p]
    module = file[:-3].split("/") if file.endswith(".py") else []
    for i in range(min(len(parts), len(module)), 0, -1):
        if parts[:i] == module[-i:]:
            parts = parts[i:]
            break
    return "::".join([file, *parts, name])


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    marked = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (marked or lines or ["(no message)"])[-1][:300]


def read_junit(xml: bytes, root: Path | None = None) -> Report:
    """The tests of a JUnit XML report (one or many ``<testsuite>``s), and the files pytest
    could not collect (a ``<testcase>`` without a class whose error is a collection failure)."""
    from xml.etree import ElementTree

    try:
        tree = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ReportError(f"unreadable JUnit report: {exc}") from None
    report = Report()
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        classname = case.get("classname", "")
        file = _safe_file(case.get("file"))
        error = case.find("error")
        if error is not None and not classname and "collection" in error.get("message", ""):
            where = file or name
            report.broken[where] = _last_error_line(error.text or error.get("message") or "")
            continue
        if file is not None:
            test_id = _file_id(file, classname, name)
        else:
            test_id = _node_id(classname, name, root)
        if error is not None:
            outcome = "error"
        elif case.find("failure") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        report.add(test_id, outcome)
    return report


def parse_junit(xml: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from a JUnit XML report (:func:`read_junit`'s, without the broken files)."""
    return read_junit(xml, root).outcomes


_UNITTEST = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n.*?)? \.\.\. (.+)$", re.M)
_UNITTEST_OUTCOMES = {
    "ok": "passed",
    "FAIL": "failed",
    "ERROR": "error",
    "expected failure": "passed",
    "unexpected success": "failed",
}


def read_unittest(output: str, root: Path | None = None) -> Report:
    """The tests of ``python -m unittest -v`` output; a module that failed to import
    (``unittest.loader._FailedTest``) is a broken file."""
    report = Report()
    for name, where, verdict in _UNITTEST.findall(output):
        verdict = verdict.strip()
        outcome = "skipped" if verdict.startswith("skipped") else _UNITTEST_OUTCOMES.get(verdict)
        if outcome is None:
            continue
        # Python 3.11+ prints "test (module.Class.test)"; older versions "test (module.Class)".
        classname = where[: -len(name) - 1] if where.endswith("." + name) else where
        if classname == "unittest.loader._FailedTest":
            module = name.replace(".", "/") + ".py"
            found = root is not None and (root / module).is_file()
            report.broken[module if found else name] = _failed_import(output, name)
            continue
        report.add(_node_id(classname, name, root), outcome)
    return report


def _failed_import(output: str, module: str) -> str:
    """The last line of the ImportError unittest printed for ``module``."""
    m = re.search(
        rf"^ERROR: {re.escape(module)} \(unittest\.loader\._FailedTest[^\n]*\n-+\n(.*?)(?:^=+$|\Z)",
        output,
        re.M | re.S,
    )
    return _last_error_line(m.group(1)) if m else "the module could not be imported"


def parse_unittest(output: str, root: Path | None = None) -> Outcomes:
    """Outcomes from ``python -m unittest -v`` output (:func:`read_unittest`'s)."""
    return read_unittest(output, root).outcomes


_LIBTEST = re.compile(
    r"^\s*Running (?:unittests )?(\S+)|^\s*Doc-tests (\S+)|^test (\S+) \.\.\. (ok|FAILED|ignored)",
    re.M,
)


def parse_libtest(output: str) -> Outcomes:
    """Outcomes from Rust's libtest (``cargo test --no-fail-fast``) output. Each id carries the
    test target cargo says it is running (``src/lib.rs::tests::it_works``,
    ``tests/integration.rs::it_works``): the same name in two targets is two tests."""
    table = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}
    report = Report()
    target = ""
    for running, doc, name, verdict in _LIBTEST.findall(output):
        if running or doc:
            target = running or f"doc-tests {doc}"
            continue
        report.add(f"{target}::{name}" if target else name, table[verdict])
    return report.outcomes


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
    before: Mapping[str, str],
    after: Mapping[str, str],
    flaky: Iterable[str] = (),
    expected: Iterable[str] = (),
) -> Validation:
    """Compare outcomes before and after the edits (SWE-bench's four classes plus added/removed).

    A test that did not exist before and passes after counts as fail_to_pass only if the
    before-run included it (the pipeline runs new test files against the unfixed code); otherwise
    it is listed in ``added``. Flaky tests are reported on their own and left out of the classes.
    ``fix_validated`` is true when at least one test went from failing to passing, none from
    passing to failing, and every ``expected`` test (held-out fail_to_pass ids) is among the
    fail_to_pass ones (those that are not are listed in ``missing_expected``).
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
    v.expected_fail_to_pass = list(dict.fromkeys(expected))
    f2p = set(v.fail_to_pass)
    v.missing_expected = [t for t in v.expected_fail_to_pass if t not in f2p]
    v.fix_validated = bool(v.fail_to_pass) and not v.pass_to_fail and not v.missing_expected
    return v
