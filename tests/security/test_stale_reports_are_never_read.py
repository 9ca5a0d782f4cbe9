"""A test report the repository (or its edits) already holds is never read as a run's own.

Threat: a repository commits ``.debugtrace-junit.xml`` saying every test passes; a test runner
that then crashes before writing its report would leave that file to be read, and the fix would
look validated without a single test having run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.calc_repo import example_trace, git, make_calc_repo

FORGED = (
    b'<testsuites><testsuite name="pytest">'
    b'<testcase classname="tests.test_calc" name="test_divide_by_zero" file="tests/test_calc.py"/>'
    b"</testsuite></testsuites>"
)


@pytest.fixture
def collector(settings: Settings) -> Iterator[Collector]:
    s = settings.model_copy(
        update={"allow_local_repos": True, "sandbox": "local", "trust_trace_test_command": True}
    )
    with Collector(settings=s) as c:
        yield c


@pytest.mark.parametrize("name", [".debugtrace-junit.xml", ".debugtrace-report.json"])
def test_a_committed_report_is_removed_before_each_run(
    tmp_path: Path, collector: Collector, name: str
) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    (repo / name).write_bytes(FORGED)
    git(repo, "add", "-f", name)
    git(repo, "commit", "-qm", "a report that says everything passes")
    # a runner that exits without writing its report (it crashed)
    doc = example_trace(
        repo, metadata={"test_command": '{python} -c "raise SystemExit(1)" {junit}'}
    )
    trace = collector.submit(doc)
    v = collector.finalize(str(trace.id)).result.validation
    assert v is not None and v.fix_validated is None
    assert v.could_not_test and "wrote no test report" in v.could_not_test
