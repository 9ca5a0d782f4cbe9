"""The pytest plugin: red -> edit -> green runs of a repository become one trace, effortlessly.

Each test drives real pytest runs in a real git repository (the calc example) through pytester,
in subprocesses, the way a developer runs them; the stored traces are read back through the
public API.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from debugtrace import Collector, Trace
from debugtrace.capture.pytest_recorder import Failure, RunReport
from support.calc_repo import git, make_calc_repo

pytest_plugins = ["pytester"]

FIXED = (
    "def divide(a, b):\n    if b == 0:\n        raise ValueError('division by zero')\n"
    "    return a / b\n"
)
# The plugin module by name: entry-point autoloading is off in these runs (it is on in the xdist
# test), so the many plugins of this environment do not slow every run down.
PLUGIN = ("-p", "debugtrace.capture.pytest_plugin", "-p", "no:cacheprovider")


@pytest.fixture(autouse=True, scope="module")
def _storage_stack_imported() -> None:
    # pytester restores sys.modules after each test; load the storage stack before its snapshot,
    # or each test would import a second SQLAlchemy whose classes do not match the first's.
    with Collector(database_url="sqlite://") as c:
        c.traces(limit=1)


@pytest.fixture
def repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The calc repository (one failing test), with a SQLite store of the test's own."""
    make_calc_repo(pytester.path)
    # pytester keeps its runs' --basetemp and output in the repository; a developer's are elsewhere.
    (pytester.path / ".git" / "info" / "exclude").write_text("runpytest-*\nstdout\nstderr\n")
    monkeypatch.setenv("DEBUGTRACE_DATABASE_URL", f"sqlite:///{tmp_path / 'traces.db'}")
    monkeypatch.setenv("DEBUGTRACE_SANDBOX", "local")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("DEBUGTRACE_RECORDING", raising=False)
    return pytester.path


def run(pytester: pytest.Pytester, *args: str, nested: bool = False) -> pytest.RunResult:
    """Run pytest on the repository as a developer's shell does (or, ``nested``, as a test that
    runs pytest does)."""
    with pytest.MonkeyPatch.context() as mp:
        if not nested:
            mp.delenv("PYTEST_CURRENT_TEST", raising=False)
        return pytester.runpytest_subprocess(*PLUGIN, "-q", *args, timeout=300)


def traces() -> list[Trace]:
    """Every stored trace, oldest first, with its events."""
    with Collector() as c:
        return [c.get(str(s.id)) for s in reversed(c.traces(limit=100).items)]


def debugtrace_lines(result: pytest.RunResult) -> list[str]:
    return [ln for ln in result.outlines + result.errlines if ln.startswith("debugtrace:")]


def test_a_red_edit_green_session_becomes_one_trace(pytester: pytest.Pytester, repo: Path) -> None:
    red = run(pytester, "--debugtrace")
    red.assert_outcomes(passed=1, failed=1)
    assert "debugtrace: opened trace" in red.stdout.str()

    (repo / "calc.py").write_text(FIXED)
    green = run(pytester, "--debugtrace", "--debugtrace-finalize")
    green.assert_outcomes(passed=2)
    assert any("closed trace" in ln for ln in debugtrace_lines(green))
    # The verdict is the plugin's last line.
    assert re.fullmatch(
        r"debugtrace: finalized \w+: fix validated: yes", debugtrace_lines(green)[-1]
    )

    [trace] = traces()
    assert [e.type for e in trace.events] == ["command", "edit", "command"]
    first, edit, last = trace.events
    # The failing run: its exact command line, exit code and a compact summary of the failure.
    assert first.details.command.endswith("-q --debugtrace")  # type: ignore[union-attr]
    assert first.details.exit_code == 1  # type: ignore[union-attr]
    assert "FAILED tests/test_calc.py::test_divide_by_zero" in first.details.output  # type: ignore[union-attr]
    assert "ZeroDivisionError: division by zero" in first.details.output  # type: ignore[union-attr]
    assert first.details.model_extra == {  # type: ignore[union-attr]
        "source": "pytest",
        "tests": {"failed": 1, "passed": 1},
        "failed_tests": ["tests/test_calc.py::test_divide_by_zero"],
    }
    # The change between the runs, as an applicable diff, then the green run.
    assert edit.details.file == "calc.py"  # type: ignore[union-attr]
    assert "+        raise ValueError('division by zero')" in edit.details.diff  # type: ignore[union-attr]
    assert last.details.exit_code == 0  # type: ignore[union-attr]
    # The first failing run says what the bug is, and where the repository stood.
    assert "tests/test_calc.py::test_divide_by_zero" in trace.bug_description
    assert "ZeroDivisionError" in trace.bug_description
    assert trace.base_commit == git(repo, "rev-parse", "HEAD")
    assert trace.branch == "main"
    assert trace.metadata["source"] == "debugtrace pytest"
    # --debugtrace-finalize validated the fix in the sandbox.
    assert trace.result.validation is not None
    assert trace.result.validation.fail_to_pass == ["tests/test_calc.py::test_divide_by_zero"]

    # The green run closed the trace: the next red run opens a new one.
    (repo / "calc.py").write_text("def divide(a, b):\n    return a // b\n")
    run(pytester, "--debugtrace").assert_outcomes(passed=1, failed=1)
    assert len(traces()) == 2


def test_green_runs_without_an_open_trace_record_nothing(
    pytester: pytest.Pytester, repo: Path, tmp_path: Path
) -> None:
    (repo / "calc.py").write_text(FIXED)
    result = run(pytester, "--debugtrace")
    result.assert_outcomes(passed=2)
    assert debugtrace_lines(result) == []
    assert not (tmp_path / "traces.db").exists()  # not even a database was created


def test_it_is_off_unless_asked(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(pytester).assert_outcomes(passed=1, failed=1)
    assert traces() == []

    monkeypatch.setenv("DEBUGTRACE_PYTEST", "1")  # the environment turns it on...
    assert "opened trace" in run(pytester).stdout.str()

    monkeypatch.setenv("DEBUGTRACE_PYTEST", "0")  # ...or off, whatever the ini file says
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = .\ndebugtrace = true\n")
    assert debugtrace_lines(run(pytester)) == []
    monkeypatch.delenv("DEBUGTRACE_PYTEST")
    assert "recorded this run" in run(pytester).stdout.str()  # the ini option alone
    assert [len(t.events) for t in traces()] == [3]  # run, edit of pytest.ini, run

    # A pytest run inside another's test (a plugin's own test suite) records only when told to.
    assert debugtrace_lines(run(pytester, nested=True)) == []
    assert "recorded this run" in run(pytester, "--debugtrace", nested=True).stdout.str()


def test_notes_go_to_the_open_trace_from_pytest_and_from_the_shell(
    pytester: pytest.Pytester, repo: Path
) -> None:
    lonely = run(pytester, "--debugtrace-note", "nothing is open yet")
    assert "no open trace" not in lonely.stdout.str()  # a red run opens one: the note is kept
    note = subprocess.run(
        [str(Path(sys.executable).parent / "debugtrace"), "note", "b == 0 is not guarded"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert note.returncode == 0, note.stderr
    run(pytester, "--debugtrace-note", "still failing, as expected")

    [trace] = traces()
    assert [(e.type, getattr(e.details, "text", None)) for e in trace.events] == [
        ("reasoning", "nothing is open yet"),
        ("command", None),
        ("reasoning", "b == 0 is not guarded"),
        ("reasoning", "still failing, as expected"),
        ("command", None),
    ]


def test_a_note_on_a_green_run_without_an_open_trace_says_it_was_dropped(
    pytester: pytest.Pytester, repo: Path
) -> None:
    (repo / "calc.py").write_text(FIXED)
    result = run(pytester, "--debugtrace-note", "all good")
    assert debugtrace_lines(result) == [
        "debugtrace: no open trace, so the note was not recorded (a red run opens one)"
    ]


def test_uncommitted_changes_at_the_first_red_run_are_recorded_before_it(
    pytester: pytest.Pytester, repo: Path
) -> None:
    (repo / "tests" / "test_more.py").write_text(
        "from calc import divide\n\ndef test_half():\n    assert divide(1, 2) == 0.5\n"
    )
    run(pytester, "--debugtrace").assert_outcomes(passed=2, failed=1)
    [trace] = traces()
    assert [e.type for e in trace.events] == ["edit", "command"]
    assert trace.events[0].details.file == "tests/test_more.py"  # type: ignore[union-attr]


def test_a_collection_error_is_a_red_run(pytester: pytest.Pytester, repo: Path) -> None:
    (repo / "calc.py").write_text("import does_not_exist\n")
    result = run(pytester, "--debugtrace")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's own verdict is unchanged
    [trace] = traces()
    assert "tests/test_calc.py" in trace.bug_description
    assert "ModuleNotFoundError: No module named 'does_not_exist'" in trace.bug_description


def test_a_session_started_from_the_shell_stays_open_through_green_runs(
    pytester: pytest.Pytester, repo: Path
) -> None:
    exe = str(Path(sys.executable).parent / "debugtrace")
    start = subprocess.run(
        [exe, "start", "--bug", "divide by zero"], cwd=repo, capture_output=True, text=True
    )
    assert start.returncode == 0, start.stderr
    (repo / "calc.py").write_text(FIXED)
    green = run(pytester, "--debugtrace")
    assert "recorded this run (passed) after 1 edit(s)" in green.stdout.str()
    stop = subprocess.run([exe, "stop"], cwd=repo, capture_output=True, text=True)
    assert stop.returncode == 0, stop.stderr  # still open: `debugtrace stop` closes it

    [trace] = traces()
    assert trace.bug_description == "divide by zero"
    assert [e.type for e in trace.events] == ["edit", "command"]


def test_each_branch_has_its_own_open_trace(pytester: pytest.Pytester, repo: Path) -> None:
    run(pytester, "--debugtrace")
    git(repo, "checkout", "-q", "-b", "other")
    run(pytester, "--debugtrace")
    git(repo, "checkout", "-q", "main")
    run(pytester, "--debugtrace")
    assert [(t.branch, len(t.events)) for t in traces()] == [("main", 2), ("other", 1)]


def test_recording_trouble_is_one_warning_line_and_never_changes_the_outcome(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Not a git repository.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "test_x.py").write_text("def test_x():\n    assert False\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGIN, "--debugtrace", "test_x.py"],
        cwd=outside,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED
    assert "1 failed" in proc.stdout
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("debugtrace:")] == [
        f"debugtrace: warning: this run was not recorded: {outside} is not in a git repository "
        "with a commit"
    ]

    # A store that cannot be written (even as root: its directory is a file).
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("DEBUGTRACE_DATABASE_URL", f"sqlite:///{blocked / 'traces.db'}")
    monkeypatch.setenv("DEBUGTRACE_DATA_DIR", str(blocked / "data"))
    result = run(pytester, "--debugtrace")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [line] = debugtrace_lines(result)
    assert line.startswith("debugtrace: warning: this run was not recorded:")


def test_a_command_recorded_by_debugtrace_exec_is_not_recorded_twice(
    pytester: pytest.Pytester, repo: Path
) -> None:
    exe = str(Path(sys.executable).parent / "debugtrace")
    subprocess.run([exe, "start", "--bug", "x"], cwd=repo, check=True, capture_output=True)
    cmd = [exe, "exec", "--", sys.executable, "-m", "pytest", *PLUGIN, "-q", "--debugtrace"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "debugtrace:" not in proc.stdout
    [trace] = traces()
    assert [e.type for e in trace.events] == ["command"]


def test_with_xdist_one_session_is_one_command_event(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed plugins load from their entry points here, as in a developer's environment.
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--debugtrace", timeout=300
    )
    result.assert_outcomes(passed=1, failed=1)
    [trace] = traces()
    [event] = trace.events
    assert event.details.model_extra["tests"] == {"failed": 1, "passed": 1}  # type: ignore[union-attr]
    assert event.details.model_extra["xdist_workers"] == 2  # type: ignore[union-attr]


def test_the_summary_and_bug_description_stay_compact() -> None:
    failures = [
        Failure(f"tests/test_x.py::test_{i}", message=f"AssertionError: {i}", lines=["x" * 10])
        for i in range(30)
    ]
    report = RunReport(
        command="pytest",
        cwd=".",
        exit_code=1,
        duration_s=1.5,
        started_at="2026-11-26T00:00:00+00:00",
        counts={"failed": 30},
        failures=failures,
    )
    summary = report.summary()
    assert summary.startswith("30 failed in 1.50s\n")
    assert summary.count("FAILED ") == 20
    assert "... and 10 more: tests/test_x.py::test_20," in summary
    assert report.bug_description() == (
        "`pytest` fails: tests/test_x.py::test_0: AssertionError: 0 (and 29 more: "
        + ", ".join(f"tests/test_x.py::test_{i}" for i in range(1, 6))
        + ", ... 24 more)"
    )


def test_the_bug_title_leaves_out_debugtrace_s_own_flags() -> None:
    # the note is recorded as reasoning of its own; in the title it would be noise
    report = RunReport(
        command="python -m pytest -x --debugtrace --debugtrace-note 'it'\"'\"'s the dev release' "
        "tests/test_specifiers.py",
        cwd=".",
        exit_code=1,
        duration_s=0.5,
        started_at="2026-12-05T00:00:00+00:00",
        failures=[Failure("tests/test_specifiers.py::test_pre", message="AssertionError")],
    )
    assert report.bug_description() == (
        "`python -m pytest -x tests/test_specifiers.py` fails: "
        "tests/test_specifiers.py::test_pre: AssertionError"
    )


def test_in_a_recording_shell_runs_go_to_its_session_on_any_branch(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = str(Path(sys.executable).parent / "debugtrace")
    start = subprocess.run([exe, "start", "--bug", "x"], cwd=repo, capture_output=True, text=True)
    monkeypatch.setenv("DEBUGTRACE_SESSION", start.stdout.strip())  # as the shell snippet does
    git(repo, "checkout", "-q", "-b", "fix")
    assert "recorded this run (1 failed)" in run(pytester, "--debugtrace").stdout.str()
    [trace] = traces()
    assert [e.type for e in trace.events] == ["command"]


# -- the finalize lines, from results built by hand ---------------------------------------------


def test_the_last_line_says_could_not_test_with_the_reason_never_no() -> None:
    from debugtrace.capture.pytest_recorder import _finalize_lines
    from debugtrace.results import Stage, TraceResult
    from debugtrace.testing import UNTESTED_REASON, example_validation

    untested = TraceResult(
        stages=[Stage(name="tests", status="failed", message=UNTESTED_REASON)],
        validation=example_validation(None),
    )
    assert _finalize_lines("t1", untested)[-1] == f"finalized t1: could not test: {UNTESTED_REASON}"
    refuted = TraceResult(validation=example_validation(False))
    assert _finalize_lines("t1", refuted)[-1] == "finalized t1: fix validated: no"
    gone = TraceResult(stages=[Stage(name="workspace", status="failed", message="no clone")])
    assert _finalize_lines("t1", gone)[-1] == (
        "finalized t1: could not test: workspace failed: no clone"
    )


def test_an_earlier_verdict_that_stands_is_said_with_the_run_that_failed() -> None:
    from datetime import UTC, datetime

    from debugtrace.capture.pytest_recorder import _finalize_lines
    from debugtrace.results import Stage, TraceResult
    from debugtrace.testing import example_validation

    validated = TraceResult(
        validation=example_validation(True), finalized_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    gone = TraceResult(
        stages=[Stage(name="workspace", status="failed", message="no clone")],
        finalized_at=datetime(2026, 3, 3, tzinfo=UTC),
    )
    lines = _finalize_lines("t1", validated.with_run(gone))
    assert lines[-2:] == [
        "this run: workspace failed: no clone; the verdict of an earlier run stands",
        "finalized t1: fix validated: yes",
    ]
