"""One test run in a sandbox, read into per-test results, or the reason it gave no verdict.

A run that could not test raises :class:`CouldNotTest` with the reason: it timed out or hit a
limit, the runner is missing, the runner says it did not run the tests (pytest's exit codes 2-5,
unittest's 5), no report was written, the report is unreadable or names two tests alike, or it
reported no test at all. Which test files could not be collected is for the caller to judge
(:func:`judge_broken`): before the edits that is how a new regression test fails; after them it
means the environment is wrong.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from debugtrace.errors import CouldNotTest, ReportError
from debugtrace.finalize import testresults as tr
from debugtrace.sandbox import ResourceLimits

if TYPE_CHECKING:
    from debugtrace.sandbox import ProjectSpec, RunResult, Sandbox

__all__ = [
    "FROM_OUTPUT",
    "JUNIT",
    "OUTPUT_BYTES",
    "REPORT",
    "SideRun",
    "expand",
    "judge_broken",
    "run_side",
]

FROM_OUTPUT = frozenset({"unittest", "libtest", "go-json"})
"""Report formats read from the run's output (the others from a report file)."""
OUTPUT_BYTES = 64 * 1024**2
"""Output kept of a run whose per-test results are read from it (head and tail otherwise)."""
JUNIT = ".debugtrace-junit.xml"
REPORT = ".debugtrace-report.json"
_PYTEST_NO_VERDICT = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest was used wrongly (a usage or configuration error)",
    5: "pytest collected no tests",
}
_NO_PYTEST = "No module named pytest"
# Run inside the sandbox after a Maven build: Surefire writes one XML file per test class
# (per module); they become one JUnit document. Standard library only, bounded.
MERGE_SUREFIRE = """
import glob, sys
parts, total = [], 0
for path in sorted(glob.glob('**/target/surefire-reports/TEST-*.xml', recursive=True))[:5000]:
    with open(path, 'rb') as f:
        data = f.read(16 * 1024 * 1024)
    if data.startswith(b'<?xml'):
        data = data[data.find(b'?>') + 2:]
    total += len(data)
    if total > 256 * 1024 * 1024:
        break
    parts.append(data)
if parts:
    with open(sys.argv[1], 'wb') as f:
        f.write(b'<testsuites>' + b''.join(parts) + b'</testsuites>')
"""


@dataclass
class SideRun:
    """What one run found: the command, the sandbox's result and the report read from it, or
    why the run gave no verdict."""

    argv: list[str]
    result: RunResult
    report: tr.Report
    problem: str | None = None
    """Why the run could not test (then ``report`` is empty), None when it could."""
    note: str = ""
    """What the sandbox said about where it ran (the image, built or reused)."""


def expand(argv: tuple[str, ...], python: str) -> list[str]:
    """The command with ``{python}``, ``{junit}`` and ``{report}`` filled in."""
    return [
        a.replace("{python}", python).replace("{junit}", JUNIT).replace("{report}", REPORT)
        for a in argv
    ]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1:] or ["(no output)"])[0][:300]


def _read(fmt: str | None, res: RunResult, tree: Path, argv: list[str]) -> tr.Report | None:
    """The report of a finished run; None when the runner wrote none."""
    if fmt in ("junit", "surefire"):
        return tr.read_junit(res.files[JUNIT], tree) if JUNIT in res.files else None
    if fmt == "unittest":
        return tr.read_unittest(res.output, tree)
    if fmt == "libtest":
        return tr.Report(tr.parse_libtest(res.output))
    if fmt == "go-json":
        return tr.Report(tr.parse_go_json(res.output))
    if fmt is not None:
        parsers = _js_parsers()
        if fmt in parsers:
            if REPORT not in res.files:
                return None
            return tr.Report(parsers[fmt](res.files[REPORT], tree))
        raise CouldNotTest(f"debugtrace cannot read {fmt!r} reports")
    # No per-test report: the whole run is one test, passed when it exits 0.
    return tr.Report({shlex.join(argv): "passed" if res.exit_code == 0 else "failed"})


def _js_parsers() -> Mapping[str, Callable[[bytes, Path | None], dict[str, str]]]:
    try:
        from debugtrace.finalize.jsreports import PARSERS
    except ImportError:  # pragma: no cover - shipped with the package
        return {}
    return PARSERS


def run_side(
    sandbox: Sandbox,
    python: str,
    tree: Path,
    project: ProjectSpec,
    limits: ResourceLimits,
    side: str,
) -> SideRun:
    """Run the tests once on ``tree``; ``problem`` says why when they gave no verdict."""
    for name in (JUNIT, REPORT):
        # a report the repository, its edits or an earlier run left must never be read as
        # this run's (the runner may crash before writing its own)
        stale = tree / name
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    handle = sandbox.prepare(tree, project)
    try:
        argv = expand(project.test_command, python)
        res = sandbox.run(handle, argv, limits, fetch=[JUNIT, REPORT])
        if project.report_format == "surefire" and not res.timed_out:
            merge = [sandbox.python, "-I", "-S", "-c", MERGE_SUREFIRE, JUNIT]
            merged = sandbox.run(handle, merge, ResourceLimits(timeout_s=120), fetch=[JUNIT])
            res.files, res.files_omitted = merged.files, merged.files_omitted
        note = str(handle.state.get("note") or "")
    finally:
        sandbox.close(handle)
    try:
        return SideRun(argv, res, check(res, project, tree, argv, side, limits), note=note)
    except CouldNotTest as exc:
        return SideRun(argv, res, tr.Report(), str(exc), note=note)


def check(
    res: RunResult,
    project: ProjectSpec,
    tree: Path,
    argv: list[str],
    side: str,
    limits: ResourceLimits,
) -> tr.Report:
    """The report of ``res``, or :class:`CouldNotTest` saying why there is none worth reading."""
    run = f"the {side} run"
    if res.timed_out:
        raise CouldNotTest(f"{run} timed out after {limits.timeout_s:.0f}s")
    if res.limit_hit:
        raise CouldNotTest(f"{run} was stopped: it passed the sandbox's {res.limit_hit} limit")
    if res.exit_code is None:
        raise CouldNotTest(f"{run} was stopped before it ended: {_last_line(res.output)}")
    code = res.exit_code
    if code in (126, 127) or (code != 0 and _NO_PYTEST in res.output):
        raise CouldNotTest(f"{run}: the test runner is missing: {_last_line(res.output)}")
    if project.report_format in FROM_OUTPUT and res.output_bytes > limits.output_bytes:
        # per-test results read from output: its middle was cut, and with it tests
        raise CouldNotTest(
            f"{run} printed {res.output_bytes} bytes, more than the {limits.output_bytes} kept: "
            "its per-test results cannot all be read"
        )
    is_pytest = project.report_format == "junit" and "pytest" in " ".join(argv)
    if is_pytest and code in _PYTEST_NO_VERDICT:
        raise CouldNotTest(
            f"{run}: {_PYTEST_NO_VERDICT[code]} (exit {code}): {_last_line(res.output)}"
        )
    if project.report_format == "unittest" and code == 5:
        raise CouldNotTest(f"{run}: unittest found no tests (exit 5)")
    try:
        report = _read(project.report_format, res, tree, argv)
    except ReportError as exc:
        raise CouldNotTest(f"{run}: {exc}") from None
    if report is None:
        raise CouldNotTest(f"{run} wrote no test report (exit {code}): {_last_line(res.output)}")
    if not report.outcomes and not report.broken:
        raise CouldNotTest(f"{run} ran no tests (exit {code}): {_last_line(res.output)}")
    return report


def judge_broken(
    before: tr.Report, after: tr.Report, expected_broken: Collection[str]
) -> dict[str, str]:
    """Check the files neither run could collect and return the before outcomes to use.

    After the edits every test file must be collected. Before them, only a test file the trace
    or its held-out patch changed (``expected_broken``) may fail to import (a regression test
    that imports what the fix adds): its tests then count as failing before. Anything else
    is :class:`CouldNotTest`.
    """
    for where, why in after.broken.items():
        raise CouldNotTest(f"{where} could not be collected after the edits: {why}")
    outcomes = dict(before.outcomes)
    for where, why in before.broken.items():
        if where not in expected_broken:
            raise CouldNotTest(f"{where} could not be collected before the edits: {why}")
        for test in after.outcomes:
            if test.startswith(where + "::"):
                outcomes.setdefault(test, "error")
    return outcomes
