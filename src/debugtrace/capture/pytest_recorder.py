"""Record a pytest run into the open trace of its repository and branch (the pytest plugin's
recording process).

The plugin starts ``python -m debugtrace.capture.pytest_recorder ROOTDIR`` when the run starts. This
process snapshots the working tree at once (the code the tests are about to run), imports the
storage stack while the tests run on another core, then reads one JSON line — the run's
:class:`RunReport` — from stdin, records it, and prints one line per thing it did. Keeping this
out of the pytest process is what keeps the plugin's fixed cost small; a crash here can never
change a test outcome.

Rules (one open trace per repository and branch, shared with ``debugtrace start``):

- a failing run with no open trace opens one: the failures are the bug description and HEAD the
  base commit; uncommitted changes present at that run are recorded first, as edits;
- every run with an open trace records the working tree's change since the previous run as
  edits, the run's ``--debugtrace-note`` texts as reasoning, and the run as a command;
- a green run closes a trace the plugin opened (finalizing it with ``--debugtrace-finalize``); a
  trace opened with ``debugtrace start`` stays open until ``debugtrace stop``.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from debugtrace.capture.session import Session, SessionStore
    from debugtrace.client import RemoteCollector
    from debugtrace.collector import Collector
    from debugtrace.config import Settings
    from debugtrace.results import TraceResult

__all__ = ["Failure", "Prepared", "RunReport", "main", "record"]

SUMMARY_FAILURES = 20
"""Failures described in the command event's output; the rest are only counted and named."""
LISTED_FAILURES = 1000
"""Failing test ids kept in the command event's details."""
NOTE_DROPPED = "no open trace, so the note was not recorded (a red run opens one)"


@dataclass
class Failure:
    """One failed test (or collection error): its id, phase and the first lines of its error."""

    nodeid: str
    when: str = "call"
    message: str = ""
    lines: list[str] = field(default_factory=list)
    location: str = ""


@dataclass
class RunReport:
    """What the plugin saw of one pytest run."""

    command: str
    cwd: str
    exit_code: int
    duration_s: float
    started_at: str
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    finalize: bool = False
    workers: int | None = None

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        """Parse the line the plugin sends."""
        doc = json.loads(text)
        doc["failures"] = [Failure(**f) for f in doc.get("failures", [])]
        return cls(**doc)

    @property
    def red(self) -> bool:
        """Whether tests failed (or could not be collected): the run shows a bug."""
        return bool(self.failures)

    @property
    def green(self) -> bool:
        """Whether the run passed cleanly (exit code 0)."""
        return self.exit_code == 0 and not self.failures

    def summary(self) -> str:
        """The command event's output: the counts, then each failure with the first lines of its
        error, like pytest's own short summary."""
        counts = ", ".join(f"{n} {k}" for k, n in self.counts.items() if n) or "no tests ran"
        out = [f"{counts} in {self.duration_s:.2f}s"]
        for f in self.failures[:SUMMARY_FAILURES]:
            kind = "FAILED" if f.when == "call" else "ERROR"
            out.append(f"{kind} {f.nodeid}" + (f" - {f.message}" if f.message else ""))
            out.extend(f"    {line}" for line in f.lines)
            if f.location:
                out.append(f"    at {f.location}")
        if len(self.failures) > SUMMARY_FAILURES:
            rest = self.failures[SUMMARY_FAILURES:]
            out.append(f"... and {len(rest)} more: " + ", ".join(f.nodeid for f in rest[:50]))
        return "\n".join(out) + "\n"

    def bug_description(self) -> str:
        """What the first failing run says the bug is: the failing tests and their errors (the
        command without debugtrace's own flags: they say how it was recorded, not the bug)."""
        from debugtrace.textutil import strip_debugtrace_flags

        first = self.failures[0]
        text = f"`{strip_debugtrace_flags(self.command)}` fails: {first.nodeid}"
        if first.message:
            text += f": {first.message}"
        if len(self.failures) > 1:
            others = ", ".join(f.nodeid for f in self.failures[1:6])
            more = len(self.failures) - 6
            text += f" (and {len(self.failures) - 1} more: {others}" + (
                f", ... {more} more)" if more > 0 else ")"
            )
        return text


@dataclass
class Prepared:
    """The repository as the run started: root, branch, HEAD and a snapshot of the working tree."""

    repo: str
    branch: str
    head: str
    tree: str
    at: datetime

    @classmethod
    def at_start(cls, rootdir: Path) -> Prepared:
        """Snapshot the repository containing ``rootdir``; raises when it is not a git working
        tree with a commit."""
        from debugtrace.capture.session import current_branch
        from debugtrace.errors import DebugtraceError, GitError
        from debugtrace.gitdiff import WorktreeSnapshots, head_commit

        at = datetime.now(UTC)
        try:
            snaps = WorktreeSnapshots(rootdir, "HEAD")
            return cls(
                str(snaps.repo),
                current_branch(snaps.repo),
                head_commit(snaps.repo),
                snaps.snapshot(),
                at,
            )
        except GitError as exc:
            raise DebugtraceError(f"{rootdir} is not in a git repository with a commit") from exc


def record(
    collector: Collector | RemoteCollector, store: SessionStore, prep: Prepared, run: RunReport
) -> list[str]:
    """Record ``run`` by the rules above; returns one line per thing done (for the terminal)."""
    from debugtrace.capture.session import capture, start
    from debugtrace.model import Event, ReasoningEvent

    lines: list[str] = []
    with store.lock(prep.repo, prep.branch):
        session = store.current(prep.repo, prep.branch)
        if session is None:
            if not run.red:
                if run.notes:
                    lines.append(NOTE_DROPPED)
                return lines
            session = start(
                collector,
                store,
                Path(prep.repo),
                run.bug_description(),
                origin="pytest",
                base=prep.head,
            )
            lines.append(f"opened trace {session.trace_id} for {session.repo} ({session.branch})")
        edits = capture(collector, store, session, upto=prep.tree, at=prep.at)
        started = datetime.fromisoformat(run.started_at)
        events: list[Event] = [
            ReasoningEvent.new(text).model_copy(update={"timestamp": started}) for text in run.notes
        ]
        events.append(_command_event(run).model_copy(update={"timestamp": started}))
        collector.add_events(session.trace_id, events)
        verdict = "passed" if run.green else f"{len(run.failures)} failed"
        edited = f" after {len(edits)} edit(s)" if edits else ""
        if run.green and session.origin == "pytest":
            store.close(session)
            lines.append(f"tests pass{edited}: closed trace {session.trace_id}")
            if run.finalize:
                lines.extend(_finalize(collector, session))
        else:
            lines.append(f"recorded this run ({verdict}){edited} in trace {session.trace_id}")
    return lines


def _command_event(run: RunReport) -> Any:
    from debugtrace.model import CommandEvent

    return CommandEvent.new(
        run.command,
        output=run.summary(),
        exit_code=run.exit_code,
        cwd=run.cwd,
        duration_s=round(run.duration_s, 3),
        source="pytest",
        tests=run.counts,
        failed_tests=[f.nodeid for f in run.failures[:LISTED_FAILURES]],
        **({"xdist_workers": run.workers} if run.workers else {}),
    )


def _finalize(collector: Collector | RemoteCollector, session: Session) -> list[str]:
    """What finalize found, the verdict last: ``finalized <id>: fix validated: yes|no``, or
    ``finalized <id>: could not test: <reason>`` (never "no" for a fix nobody could test). On a
    team server finalize is queued: its result comes later."""
    from debugtrace.client import RemoteCollector

    if isinstance(collector, RemoteCollector):
        collector.enqueue_finalize(session.trace_id)
        return [f"finalize of {session.trace_id} queued on {collector.settings.server_url}"]
    trace = collector.finalize(session.trace_id)
    return _finalize_lines(session.trace_id, trace.result)


def _finalize_lines(trace_id: str, result: TraceResult) -> list[str]:
    from debugtrace.storage import latest_run, outcome

    v = result.validation
    lines = [f"fail_to_pass: {', '.join(v.fail_to_pass)}"] if v and v.fail_to_pass else []
    if v and v.missing_expected:
        lines.append(f"expected but not fail_to_pass: {', '.join(v.missing_expected)}")
    lines.extend(f"grade ({g.grader}): {g.score}/5" for g in result.grades)
    latest = latest_run(result)
    if latest is not result:  # this run failed before the tests; an earlier verdict stands
        lines.append(f"this run: {outcome(latest)}; the verdict of an earlier run stands")
    if v is not None and v.fix_validated is not None:
        verdict = f"fix validated: {'yes' if v.fix_validated else 'no'}"
    else:
        verdict = outcome(result)  # could not test: <reason>, or the stage that failed
        if not verdict.startswith("could not test"):
            verdict = f"could not test: {verdict}"
    lines.append(f"finalized {trace_id}: {' '.join(verdict.split())}")
    return lines


class _Warmup(threading.Thread):
    """Loads the settings, then the storage stack and plugins, while the tests run (and while the
    main thread waits on git), so that recording only pays for the work itself."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.settings_ready = threading.Event()
        self.settings: Settings | None = None
        self.collector: Collector | RemoteCollector | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            from debugtrace.config import Settings

            settings = Settings()
            own = {
                name: True
                for name in ("allow_local_repos", "trust_trace_test_command")
                if name not in settings.model_fields_set
            }
            if own:  # as on the command line: the user finalizes their own repository
                settings = settings.model_copy(update=own)
            self.settings = settings
            self.settings_ready.set()
            from debugtrace.client import RemoteCollector, connect

            if not settings.server_url:
                import debugtrace.storage.sql.storage  # noqa: F401  (the default backend's modules)
            collector = connect(settings)  # the team server's when one is configured
            if not isinstance(collector, RemoteCollector):
                collector.plugins  # noqa: B018  (entry points scanned, built-ins imported)
            self.collector = collector
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.settings_ready.set()

    def wait_settings(self) -> Settings:
        self.settings_ready.wait()
        if self.settings is None:
            raise self.error or RuntimeError("settings did not load")
        return self.settings

    def wait_collector(self) -> Collector | RemoteCollector:
        self.join()  # importing from two threads at once can see half-initialised modules
        if self.collector is None:
            raise self.error or RuntimeError("the storage did not load")
        return self.collector


def main(argv: list[str] | None = None) -> int:
    """Run the recording process: snapshot now, record the run the plugin reports on stdin.
    Returns 0 when recorded (or nothing to record), 1 after printing a warning."""
    args = sys.argv[1:] if argv is None else argv
    warm = _Warmup()
    warm.start()
    try:
        prep = Prepared.at_start(Path(args[0]))
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the run ended without a report (the plugin gave up): nothing to do
        run = RunReport.from_json(line)
        from debugtrace.capture.session import SessionStore

        store = SessionStore(warm.wait_settings().data_dir / "sessions")
        if not run.red and store.current(prep.repo, prep.branch) is None:
            # Nothing to record: do not wait for the storage stack.
            if run.notes:
                _say(NOTE_DROPPED)
            return 0
        with warm.wait_collector() as collector:
            for text in record(collector, store, prep, run):
                _say(text)
        return 0
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _say(f"warning: this run was not recorded: {message}")
        return 1


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Leave at once: a warm-up import may still be running in its thread.
    import os

    os._exit(code)
