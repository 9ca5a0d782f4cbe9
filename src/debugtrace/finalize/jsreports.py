"""Per-test results of JavaScript test runners, from the report files their runs write.

Every test id carries its file, relative to the worktree and POSIX-style, then the names of its
enclosing suites and its own name joined by ``" > "``: ``test/x.test.js::suite > inner > name``.
A file that failed as a whole (it threw on load, so none of its tests ran) is one id, the file
itself, with outcome ``error``. Two results with the same id are a :class:`ReportError`: merging
them would hide one test's outcome behind another's.

Formats (``ProjectSpec.report_format``, see :mod:`debugtrace.sandbox.node_projects`):

- ``node-test``: JSON lines from debugtrace's own ``node --test`` reporter (``node_reporter.mjs``);
- ``jest``: ``jest --json --outputFile=...``;
- ``vitest``: ``vitest run --reporter=json --outputFile=...`` (jest's shape);
- ``mocha``: debugtrace's mocha reporter, mocha's ``json`` shape plus each test's ``titlePath``
  (mocha's own ``fullTitle`` joins suite names with spaces, which cannot be split again).

Report content is untrusted: only its strings end up in ids; nothing in it names a file to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from debugtrace.errors import ReportError

__all__ = ["PARSERS", "Outcomes", "parse_jest", "parse_mocha", "parse_node_test", "parse_vitest"]

Outcomes = dict[str, str]
"""test id -> passed | failed | error | skipped"""

SEPARATOR = " > "
_MAX_SUFFIX_PARTS = 32


def _load(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportError(f"unreadable {what} report: {str(exc)[:200]}") from None


def _relative(file: str, root: Path | None) -> str:
    """``file`` as a worktree-relative POSIX path.

    Runners report absolute paths as the test process saw them, which in a container is not the
    host's worktree path; the longest trailing part of the path that is a file under ``root``
    is then the file."""
    posix = PurePosixPath(file.replace("\\", "/"))
    if not posix.is_absolute():
        return posix.as_posix()
    if root is None:
        return posix.as_posix()
    try:
        base = root.resolve()
        direct = Path(posix)
        if direct.is_relative_to(base):
            return direct.relative_to(base).as_posix()
        parts = posix.parts[1:]
        if ".." in parts:
            # test output naming a path through `..` would make this a probe of host files
            return posix.as_posix()
        for i in range(max(0, len(parts) - _MAX_SUFFIX_PARTS), len(parts)):
            candidate = PurePosixPath(*parts[i:])
            found = base / candidate
            if found.is_file() and found.resolve().is_relative_to(base):
                return candidate.as_posix()
    except (OSError, ValueError):
        pass
    return posix.as_posix()


class _Collector:
    """Outcomes that refuse a second result for the same id."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.out: Outcomes = {}

    def add(self, file: str, names: Iterable[str], outcome: str) -> None:
        names = list(names)
        test_id = f"{file}::{SEPARATOR.join(names)}" if names else file
        if test_id in self.out:
            raise ReportError(
                f"{self.what} report: two results for the test id {test_id[:300]!r}; "
                "rename one of the tests (ids must be unique to compare runs)"
            )
        self.out[test_id] = outcome


def _str(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise ReportError(f"unreadable {what} report: {where} is not a string")
    return value


def _titles(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list):
        raise ReportError(f"unreadable {what} report: {where} is not a list")
    return [_str(v, where, what) for v in value]


_NODE_FAILED = frozenset({"testCodeFailure", "subtestsFailed", None})


def parse_node_test(data: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from debugtrace's ``node --test`` reporter (JSON lines).

    Suites are left out unless they failed on their own (their body or a hook threw), which is
    then an ``error`` of the suite's id. A failure other than the test's own code (a hook, a
    timeout, a cancelled parent) is an ``error``; skip and todo are ``skipped``. ``root`` is not
    needed: the reporter writes paths relative to the run's directory, the worktree."""
    del root
    what = "node --test"
    out = _Collector(what)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ReportError(f"unreadable {what} report: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except (ValueError, RecursionError):
            raise ReportError(f"unreadable {what} report: line {n} is not JSON") from None
        if not isinstance(ev, dict):
            raise ReportError(f"unreadable {what} report: line {n} is not an object")
        file = ev.get("file")
        if not isinstance(file, str) or not file:
            raise ReportError(
                f"{what} report: line {n} has no file (Node before 18.17 does not say which "
                "file a test is in); run the tests with Node 18.19 or later"
            )
        path = _titles(ev.get("path"), f"line {n} path", what)
        outcome, failure = ev.get("outcome"), ev.get("failure")
        if outcome == "pass":
            result = "passed"
        elif outcome in ("skip", "todo"):
            result = "skipped"
        elif outcome == "fail":
            result = "failed" if failure in _NODE_FAILED and path else "error"
        else:
            raise ReportError(f"unreadable {what} report: line {n} has outcome {outcome!r}")
        if ev.get("type") == "suite" and (result != "error" or failure == "subtestsFailed"):
            continue
        out.add(file, path, result)
    return out.out


_JEST_STATUS = {
    "passed": "passed",
    "failed": "failed",
    "pending": "skipped",
    "skipped": "skipped",
    "todo": "skipped",
    "disabled": "skipped",
    "focused": "passed",
}


def _parse_jest_shape(data: bytes, root: Path | None, what: str) -> Outcomes:
    doc = _load(data, what)
    results = doc.get("testResults") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        raise ReportError(f"unreadable {what} report: no testResults list")
    out = _Collector(what)
    for i, suite in enumerate(results):
        if not isinstance(suite, dict):
            raise ReportError(f"unreadable {what} report: testResults[{i}] is not an object")
        file = _relative(_str(suite.get("name"), f"testResults[{i}].name", what), root)
        assertions = suite.get("assertionResults") or []
        if not isinstance(assertions, list):
            raise ReportError(f"unreadable {what} report: testResults[{i}] has no result list")
        if not assertions and suite.get("status") == "failed":
            out.add(file, [], "error")  # the file failed to load or a top-level hook threw
        for j, test in enumerate(assertions):
            where = f"testResults[{i}].assertionResults[{j}]"
            if not isinstance(test, dict):
                raise ReportError(f"unreadable {what} report: {where} is not an object")
            names = _titles(test.get("ancestorTitles", []), f"{where}.ancestorTitles", what)
            names.append(_str(test.get("title"), f"{where}.title", what))
            status = test.get("status")
            if status not in _JEST_STATUS:
                raise ReportError(f"unreadable {what} report: {where} has status {status!r}")
            out.add(file, names, _JEST_STATUS[status])
    return out.out


def parse_jest(data: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from ``jest --json --outputFile=...``; ``root`` is the worktree (for file paths)."""
    return _parse_jest_shape(data, root, "jest")


def parse_vitest(data: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from ``vitest run --reporter=json --outputFile=...`` (jest's report shape)."""
    return _parse_jest_shape(data, root, "vitest")


def parse_mocha(data: bytes, root: Path | None = None) -> Outcomes:
    """Outcomes from debugtrace's mocha reporter (mocha's ``json`` shape plus ``titlePath``).

    ``passes``, ``failures`` and ``pending`` say each test's outcome; a failed hook (``type``
    ``hook``: its suite's tests did not run) is an ``error`` under the hook's title. Without
    ``titlePath`` (mocha's own ``json`` reporter) the id falls back to ``fullTitle``."""
    what = "mocha"
    doc = _load(data, what)
    if not isinstance(doc, dict):
        raise ReportError(f"unreadable {what} report: not an object")
    out = _Collector(what)
    for key, outcome in (("passes", "passed"), ("failures", "failed"), ("pending", "skipped")):
        tests = doc.get(key, [])
        if not isinstance(tests, list):
            raise ReportError(f"unreadable {what} report: {key} is not a list")
        for i, test in enumerate(tests):
            where = f"{key}[{i}]"
            if not isinstance(test, dict):
                raise ReportError(f"unreadable {what} report: {where} is not an object")
            file = _relative(_str(test.get("file") or "", f"{where}.file", what), root)
            if "titlePath" in test:
                names = _titles(test["titlePath"], f"{where}.titlePath", what)
            else:
                names = [_str(test.get("fullTitle"), f"{where}.fullTitle", what)]
            is_hook = test.get("type") == "hook"
            out.add(file or "(unknown file)", names, "error" if is_hook else outcome)
    return out.out


PARSERS: dict[str, Callable[[bytes, Path | None], Outcomes]] = {
    "node-test": parse_node_test,
    "jest": parse_jest,
    "mocha": parse_mocha,
    "vitest": parse_vitest,
}
"""``report_format`` -> parser of the report file's bytes (``root``: the worktree)."""
