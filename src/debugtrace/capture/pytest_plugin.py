"""The pytest plugin: record red -> edit -> green sessions as traces, without extra effort.

Installed with debugtrace (entry point ``pytest11``) and off unless asked: ``pytest --debugtrace``,
``DEBUGTRACE_PYTEST=1`` or ``debugtrace = true`` in the ini file / ``[tool.pytest.ini_options]``.
Each run becomes a ``command`` event of the open trace of its repository and branch (a failing run
opens one); the working tree's change between runs becomes ``edit`` events; a green run closes the
trace. The rules live in :mod:`debugtrace.capture.pytest_recorder`, which does the recording in a
process of its own, started when the run starts, so that this module stays light (stdlib and
pytest only) and nothing it does can change a test outcome: any trouble is one
``debugtrace: warning`` line.

With pytest-xdist only the controller records (one command event per session); workers do nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["RunRecorder", "enabled"]

ERROR_LINES = 6
"""Lines of each failure's error kept in the summary (pytest's ``E`` lines first)."""
LINE_CHARS = 300
REPLY_TIMEOUT_S = 60.0
"""How long the end of the run waits for the recording process (finalize waits as long as it
takes)."""
_TRUE = {"1", "true", "yes", "on"}
_PROCESS = pytest.StashKey["subprocess.Popen[str] | str"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--debugtrace``, ``--debugtrace-note`` and ``--debugtrace-finalize``, and the
    ``debugtrace`` ini option."""
    group = parser.getgroup("debugtrace", "record debugging sessions as traces (debugtrace)")
    group.addoption(
        "--debugtrace",
        action="store_true",
        default=False,
        help="record this run into the open trace of this repository and branch; a failing run "
        "opens one, a passing run closes it (also DEBUGTRACE_PYTEST=1 or ini debugtrace = true)",
    )
    group.addoption(
        "--debugtrace-note",
        action="append",
        default=[],
        metavar="TEXT",
        help="add a reasoning note to the open trace before this run (implies --debugtrace)",
    )
    group.addoption(
        "--debugtrace-finalize",
        action="store_true",
        default=False,
        help="when a passing run closes the trace, validate the fix and grade it now "
        "(implies --debugtrace)",
    )
    parser.addini("debugtrace", type="bool", default=False, help="record test runs (debugtrace)")


def enabled(config: pytest.Config, options: Any = None) -> bool:
    """Whether this run records: a ``--debugtrace*`` option (in ``options``, default the parsed
    ones), else ``DEBUGTRACE_PYTEST``, else the ``debugtrace`` ini option — but neither of those
    two for a pytest run inside another's test. Returns the decision."""
    opt = options if options is not None else config.option
    if opt.debugtrace or opt.debugtrace_note or opt.debugtrace_finalize:
        return True
    if os.environ.get("PYTEST_CURRENT_TEST"):
        return False  # a pytest run inside a test (pytester): only an explicit option records it
    env = os.environ.get("DEBUGTRACE_PYTEST", "").strip().lower()
    if env:
        return env in _TRUE
    return bool(config.getini("debugtrace"))


def _wanted(config: pytest.Config, options: Any) -> bool:
    # Not inside a command that `debugtrace exec` or `Recorder.run` records already, not for
    # --help or --collect-only.
    if os.environ.get("DEBUGTRACE_RECORDING"):
        return False
    if getattr(options, "help", False) or getattr(options, "collectonly", False):
        return False
    return enabled(config, options)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Start the recording process as early as the options are known (before conftests and
    collection), so that its imports are done by the time the tests are."""
    # An xdist worker (which records nothing: the controller records the session) is only
    # known for sure at configure time; this variable says "probably one", so wait until then.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if _wanted(early_config, early_config.known_args_namespace):
        early_config.stash[_PROCESS] = _spawn(early_config)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Start watching the run when recording is enabled."""
    proc = config.stash.get(_PROCESS, None)
    if hasattr(config, "workerinput") or not _wanted(config, config.option):
        if isinstance(proc, subprocess.Popen):  # started early, not needed after all
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        return
    config.pluginmanager.register(RunRecorder(config, proc), "debugtrace-recorder")


def _spawn(config: pytest.Config) -> subprocess.Popen[str] | str:
    """Start ``python -m debugtrace.capture.pytest_recorder ROOTDIR``; returns it, or why it
    could not start."""
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "debugtrace.capture.pytest_recorder", str(config.rootpath)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=config.invocation_params.dir,
            start_new_session=True,  # Ctrl-C on the run must not kill the recording
        )
    except OSError as exc:
        return f"warning: this run is not recorded: {exc}"


class RunRecorder:
    """Watches one pytest run and hands its report to the recording process at the end."""

    def __init__(self, config: pytest.Config, proc: subprocess.Popen[str] | str | None) -> None:
        self.config = config
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat()
        self.counts: dict[str, int] = dict.fromkeys(
            ("failed", "passed", "skipped", "xfailed", "xpassed", "errors"), 0
        )
        self.failures: list[dict[str, Any]] = []
        self.workers: set[str] = set()
        self.lines: list[str] = []
        self.reported = False
        if proc is None:
            proc = _spawn(config)
        if isinstance(proc, str):
            self.lines.append(proc)
            proc = None
        self.proc = proc

    # -- watching the run -----------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count outcomes as pytest's summary line does and keep each failure's first lines."""
        node = getattr(getattr(report, "node", None), "gateway", None)
        if node is not None:
            self.workers.add(str(node.id))
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                self.counts["xpassed" if xfail else "passed"] += 1
            elif report.skipped:
                self.counts["xfailed" if xfail else "skipped"] += 1
            else:
                self.counts["failed"] += 1
        elif report.skipped:
            self.counts["xfailed" if xfail else "skipped"] += 1
        elif report.failed:
            self.counts["errors"] += 1
        if report.failed:
            self.failures.append(self._failure(report, report.when or "call"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module that cannot be collected is a failure too (an import error is a bug)."""
        if report.failed:
            self.counts["errors"] += 1
            self.failures.append(self._failure(report, "collect"))

    def _failure(
        self, report: pytest.TestReport | pytest.CollectReport, when: str
    ) -> dict[str, Any]:
        text = report.longreprtext
        errors = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
        lines = errors or [ln.strip() for ln in text.splitlines() if ln.strip()]
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else (lines[0] if lines else "")
        location = ""
        if crash is not None:
            path = Path(crash.path)
            with contextlib.suppress(ValueError):  # outside the rootdir: keep it absolute
                path = path.relative_to(self.config.rootpath)
            location = f"{path}:{crash.lineno}"
        return {
            "nodeid": report.nodeid or "<collection>",
            "when": when,
            "message": message.splitlines()[0][:LINE_CHARS] if message else "",
            "lines": [ln[:LINE_CHARS] for ln in lines[:ERROR_LINES]],
            "location": location,
        }

    # -- the end of the run ---------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Send the run's report to the recording process."""
        if self.proc is None or self.proc.stdin is None:
            return
        report = {
            "command": _command_line(self.config),
            "cwd": str(self.config.invocation_params.dir),
            "exit_code": int(exitstatus),
            "duration_s": time.monotonic() - self.started,
            "started_at": self.started_at,
            "counts": {k: n for k, n in self.counts.items() if n},
            "failures": self.failures,
            "notes": list(self.config.option.debugtrace_note),
            "finalize": bool(self.config.option.debugtrace_finalize),
            "workers": len(self.workers) or None,
        }
        try:
            self.proc.stdin.write(json.dumps(report) + "\n")
            self.proc.stdin.close()
        except OSError:
            pass  # the recording process is gone; collect() says why

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Show what was recorded (or the one warning line), as it happens."""
        self.collect(lambda line: terminalreporter.write_line(f"debugtrace: {line}"))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Without a terminal (``-p no:terminal``) or after an early exit, report on stderr."""
        self.collect(lambda line: print(f"debugtrace: {line}", file=sys.stderr))

    def collect(self, write: Any) -> None:
        """Wait for the recording process and pass each of its lines to ``write``."""
        if self.reported:
            return
        self.reported = True
        for line in self.lines:
            write(line)
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()  # no report was sent: the process exits without recording
        finalize = bool(self.config.option.debugtrace_finalize)
        watchdog = threading.Timer(REPLY_TIMEOUT_S, proc.kill)
        watchdog.daemon = True
        if not finalize:
            watchdog.start()
        said = _relay(proc.stdout, write)
        watchdog.cancel()
        code = proc.wait()
        if code != 0 and not said:
            write(f"warning: this run was not recorded (the recorder exited with {code})")


def _relay(stream: IO[str], write: Any) -> bool:
    said = False
    for line in stream:
        if line.strip():
            write(line.rstrip("\n"))
            said = True
    return said


def _command_line(config: pytest.Config) -> str:
    """The command as the user typed it (near enough): ``pytest ARGS`` or ``python -m pytest``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if name == "__main__.py":
        prog = ["python", "-m", "pytest"]
    elif name.startswith(("pytest", "py.test")):
        prog = [name]
    else:
        prog = ["pytest"]  # pytest.main() from an IDE or a script
    return shlex.join([*prog, *config.invocation_params.args])
