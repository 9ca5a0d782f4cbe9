"""The finalize pipeline: workspace -> apply edits -> tests before/after -> grade -> store.

Every stage records its status (ok / failed / error / skipped), start, duration, a one-line message
and a bounded log on the trace, and the result is stored as each stage ends: a crash in a later
stage never loses what the earlier ones found, and the trace itself is never lost.

- ``failed`` means the work said no (unreachable repository, an edit that does not apply, tests
  that cannot run); ``error`` means debugtrace or its sandbox broke; ``skipped`` says why.
- Edits that do not apply are recorded with git's message; the tests still run on what applied.
  When no edit applied there is nothing to validate, and the tests stage is skipped.
- The "before" run is the base commit plus the trace's edits to test files (so a regression test
  the developer wrote fails there, as in SWE-bench); the "after" run has every edit.
- Every stored message and log goes through the host's redactor (the one incoming traces go
  through: test output can print secrets too) and then is bounded; the apply stage has a time
  budget (``apply_timeout_s``), and an edit that changed a checkout's ``.git`` discards it.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from debugtrace.errors import DebugtraceError, FinalizeConflict, StageFailed, StageSkipped
from debugtrace.finalize import FinalizeHost, FinalizeOptions
from debugtrace.model import EditEvent, Trace, TraceStatus, utcnow
from debugtrace.results import EditResult, Stage, StageName, TraceResult, Validation
from debugtrace.textutil import head_tail

if TYPE_CHECKING:
    from filelock import FileLock

    from debugtrace.finalize.workspace import Workspace
    from debugtrace.sandbox import ProjectSpec, RunResult, Sandbox

__all__ = ["finalize", "grader_names", "regrade"]

LOG_BYTES = 16 * 1024
MESSAGE_BYTES = 1000
"""A stage's one-line message is cut to this (after redaction)."""
EDIT_MESSAGE_BYTES = 2000
JUNIT = ".debugtrace-junit.xml"
_TEST_PATH = re.compile(
    r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$"
)

Progress = Callable[[Stage], None]


def is_test_path(path: str) -> bool:
    """Whether an edited file is a test (its edits go into the "before" run too)."""
    return bool(_TEST_PATH.search(path))


def finalize(
    host: FinalizeHost,
    trace_id: str,
    options: FinalizeOptions | None = None,
    progress: Progress | None = None,
) -> Trace:
    """Run every stage on the stored trace and store what each found; returns the updated trace.

    Raises ``TraceNotFound`` for an unknown id and :class:`FinalizeConflict` when another finalize
    of the same trace is running. Anything else that goes wrong is recorded on the trace.
    """
    storage = host.storage
    trace = storage.get(trace_id)
    allowed: tuple[TraceStatus, ...] = ("open", "queued", "finalized")
    if options and options.force:
        allowed += ("finalizing",)
    if not storage.set_status(trace_id, "finalizing", expect=allowed):
        raise FinalizeConflict(
            f"trace {trace_id} is already being finalized; wait for it (or use --force if a "
            "previous run crashed)"
        )
    run = _Run(host, trace, options or FinalizeOptions(), progress)
    try:
        run.execute()
    finally:
        run.cleanup()
        run.result.finalized_at = utcnow()
        storage.save_result(trace_id, run.result)
        storage.set_status(trace_id, "finalized")
    stored = storage.get(trace_id)
    host.plugins.trace_finalized(stored)
    return stored


class _Run:
    """One finalize of one trace: the stages and what they share."""

    def __init__(
        self,
        host: FinalizeHost,
        trace: Trace,
        options: FinalizeOptions,
        progress: Progress | None,
    ) -> None:
        self.host = host
        self.settings = host.settings
        self.trace = trace
        self.options = options
        self.progress = progress
        self.result = TraceResult()
        self.workdir = self.settings.data_dir / "checkouts" / f"{trace.id}-{secrets.token_hex(4)}"
        self.before: Path | None = None
        self.after: Path | None = None
        self.base_sha: str | None = None
        self.applied: list[EditEvent] = []
        self.redactor = host.redactor
        self._lock: FileLock | None = None

    # -- bookkeeping ----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` through the host's redactor (whole: a cut first could split a secret)."""
        if self.redactor is None or not text:
            return text
        return self.redactor.redact(text)[0]

    def clean(self, text: str, max_bytes: int) -> str:
        """What may be stored of ``text``: redacted, then bounded to ``max_bytes``."""
        return head_tail(self.redact(text), max_bytes)

    @contextmanager
    def stage(self, name: StageName) -> Iterator[Stage]:
        st = Stage(name=name, status="running", started_at=utcnow())
        self.result.stages.append(st)
        self._notify(st)
        start = time.monotonic()
        try:
            yield st
            st.status = "ok"
        except StageSkipped as exc:
            st.status, st.message = "skipped", str(exc)
        except StageFailed as exc:
            st.status, st.message = "failed", str(exc)
        except Exception as exc:
            st.status = "error"
            st.message = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]
            st.log = st.log + "\n" + traceback.format_exc()
        finally:
            st.duration_s = round(time.monotonic() - start, 3)
            st.message = self.clean(st.message, MESSAGE_BYTES)
            st.log = self.clean(st.log, LOG_BYTES)
            self.host.storage.save_result(str(self.trace.id), self.result)
            self._notify(st)

    def _notify(self, st: Stage) -> None:
        if self.progress is not None:
            self.progress(st)

    def ok_so_far(self, *names: StageName) -> bool:
        done = {s.name: s.status for s in self.result.stages}
        return all(done.get(n) == "ok" for n in names)

    # -- stages ---------------------------------------------------------------------------------

    def execute(self) -> None:
        with self.stage("workspace") as st:
            self.workspace(st)
        with self.stage("apply") as st:
            if not self.ok_so_far("workspace"):
                raise StageSkipped("no checkout to apply the edits to")
            self.apply(st)
        with self.stage("tests") as st:
            if self.after is None:
                raise StageSkipped("no checkout to test")
            if not self.applied:
                raise StageSkipped("nothing to validate: no edit applied")
            self.tests(st)
        with self.stage("grade") as st:
            self.grade(st, grader_names(self.host))

    def new_workspace(self) -> Workspace:
        """The mirrors and checkouts, with this run's settings."""
        from debugtrace.finalize.workspace import Workspace

        s = self.settings
        return Workspace(
            s.data_dir,
            allow_local=s.allow_local_repos,
            allow_private=s.allow_local_repos or s.allow_private_repos,
            timeout_s=s.clone_timeout_s,
            max_bytes=s.max_repo_bytes,
            max_checkout_bytes=s.max_checkout_bytes,
        )

    def workspace(self, st: Stage) -> None:
        from filelock import FileLock

        from debugtrace.errors import RepoError
        from debugtrace.finalize.workspace import remove_stale_checkouts

        # This run's lock tells the next runs' cleanup that its checkouts are alive.
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.workdir) + ".lock")
        self._lock.acquire()
        removed = remove_stale_checkouts(self.workdir.parent)
        if removed:
            st.log = f"removed {removed} checkout(s) left by crashed runs"
        ws = self.new_workspace()
        try:
            mirror, action = ws.update_mirror(self.trace.repo_url)
            self.base_sha = ws.resolve(mirror, self.trace.base_commit, self.trace.created_at)
            self.after = ws.checkout(
                self.trace.repo_url, mirror, self.base_sha, self.workdir / "after"
            )
            self.before = ws.checkout(
                self.trace.repo_url, mirror, self.base_sha, self.workdir / "before"
            )
        except RepoError as exc:
            raise StageFailed(str(exc)) from None
        how = self.trace.base_commit or "the default branch head at submission"
        st.message = f"{action} {self.trace.repo_url}; checked out {self.base_sha[:12]} ({how})"

    def apply(self, st: Stage) -> None:
        from debugtrace.finalize.patching import apply_diff

        assert self.after is not None and self.before is not None
        edits = [e for e in self.trace.events if isinstance(e, EditEvent)]
        if not edits:
            raise StageSkipped("the trace has no edit events")
        budget = self.settings.apply_timeout_s
        deadline = time.monotonic() + budget
        log: list[str] = []
        stop: str | None = None  # why the edits from here on are not tried
        tainted: str | None = None
        for ev in edits:
            d = ev.details
            if stop is None and time.monotonic() >= deadline:
                stop = (
                    f"not tried: the apply stage's time budget of {budget:g}s "
                    "(DEBUGTRACE_APPLY_TIMEOUT_S) ran out"
                )
            if stop is not None:
                self.record_edit(ev, "failed", None, stop, log)
                continue
            out = apply_diff(self.after, d.file, d.diff, deadline=deadline)
            if out.status == "applied" and is_test_path(d.file):
                before = apply_diff(self.before, d.file, d.diff, deadline=deadline)
                if before.tainted:
                    out = before
            self.record_edit(ev, out.status, out.method, out.message, log)
            if out.tainted:
                tainted = f"edit #{ev.seq} ({d.file}) changed .git"
                stop = f"not tried: the checkout was discarded after {tainted}"
                self.discard_checkouts()
            elif out.status == "applied":
                self.applied.append(ev)
        st.log = "\n".join(log)
        bad = [r for r in self.result.edits if r.status != "applied"]
        st.message = f"{len(edits) - len(bad)} of {len(edits)} edits applied"
        if tainted:
            raise StageFailed(f"{tainted}: refused; the checkout was discarded, no test runs")
        if bad:
            first = bad[0]
            raise StageFailed(
                f"{st.message}; edit #{first.seq} ({first.file}) {first.status}: "
                f"{first.message.splitlines()[0] if first.message else ''}"
            )

    def record_edit(
        self,
        ev: EditEvent,
        status: Literal["applied", "failed", "refused"],
        method: str | None,
        message: str,
        log: list[str],
    ) -> None:
        """Note how one edit fared, its message redacted and bounded."""
        message = self.clean(message, EDIT_MESSAGE_BYTES)
        self.result.edits.append(
            EditResult(
                seq=ev.seq or 0,
                file=ev.details.file,
                status=status,
                method=method,
                message=message,
            )
        )
        log.append(f"#{ev.seq} {ev.details.file}: {status} {method or ''} {message}".strip())

    def discard_checkouts(self) -> None:
        """Throw the checkouts away (one's .git was changed: no git or test may run on it)."""
        self.after = self.before = None
        self.applied = []
        for name in ("after", "before", "per-edit"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)

    def tests(self, st: Stage) -> None:
        from debugtrace.sandbox import ResourceLimits

        assert self.after is not None and self.before is not None
        project = self.project(self.after)
        sandbox, note = self.sandbox()
        limits = ResourceLimits(timeout_s=self.settings.test_timeout_s)
        repeat = self.options.repeat or self.settings.repeat
        logs = [note, f"project: {project.kind}; command: {shlex.join(project.test_command)}"]
        outcomes: dict[str, list[dict[str, str]]] = {"before": [], "after": []}
        for side, tree in (("before", self.before), ("after", self.after)):
            for i in range(repeat):
                res, parsed, cmd = self.run_tests(sandbox, tree, project, limits)
                count = "no report" if parsed is None else f"{len(parsed)} tests"
                label = f"{side} run {i + 1}" if repeat > 1 else f"{side} run"
                logs.append(
                    f"--- {label}: {shlex.join(cmd)} -> exit {res.exit_code}"
                    f"{' (timed out)' if res.timed_out else ''}, {count}, "
                    f"{res.duration_s:.1f}s\n{self.clean(res.output, LOG_BYTES // 4)}"
                )
                if res.timed_out:
                    st.log = "\n".join(logs)
                    raise StageFailed(
                        f"the {side} test run timed out after {limits.timeout_s:.0f}s"
                    )
                if parsed is None:
                    st.log = "\n".join(logs)
                    last = res.output.strip().splitlines()[-1:] or ["(no output)"]
                    raise StageFailed(
                        f"the {side} test run produced no test report (exit {res.exit_code}): "
                        f"{self.redact(last[0])[:300]}"
                    )
                outcomes[side].append(parsed)
        st.log = "\n".join(logs)
        flaky = _flaky(outcomes["before"]) | _flaky(outcomes["after"])
        from debugtrace.finalize.testresults import classify

        v = classify(outcomes["before"][-1], outcomes["after"][-1], flaky)
        v.base_sha = self.base_sha
        v.test_command = list(project.test_command)
        self.result.validation = v
        if self.options.per_edit:
            self.per_edit(sandbox, project, limits, v)
        self.redact_test_ids(v)
        if not outcomes["after"][-1]:
            raise StageFailed("the test run reported no tests")
        st.message = _summary(v)

    def per_edit(
        self, sandbox: Sandbox, project: ProjectSpec, limits: object, v: Validation
    ) -> None:
        """Apply the edits one at a time on a fresh checkout; note which made each test pass."""
        from debugtrace.finalize.patching import apply_diff
        from debugtrace.sandbox import ResourceLimits

        assert isinstance(limits, ResourceLimits) and self.base_sha
        ws = self.new_workspace()
        mirror = ws.mirror_path(self.trace.repo_url)
        tree = ws.checkout(self.trace.repo_url, mirror, self.base_sha, self.workdir / "per-edit")
        pending = set(v.fail_to_pass)
        green: dict[str, int] = {}
        deadline = time.monotonic() + self.settings.apply_timeout_s
        for ev in self.applied:
            if apply_diff(tree, ev.details.file, ev.details.diff, deadline=deadline).tainted:
                shutil.rmtree(tree, ignore_errors=True)
                break
            _, parsed, _ = self.run_tests(sandbox, tree, project, limits)
            for test in sorted(pending):
                if parsed and parsed.get(test) == "passed":
                    green[test] = ev.seq or 0
                    pending.discard(test)
        v.turned_green_by = green

    def grade(self, st: Stage, names: list[str]) -> None:
        """Grade with each named grader; grades that worked are kept even if another failed."""
        from debugtrace.errors import GradeError

        failures = []
        fresh = []
        for name in names:
            try:
                grader = self.host.plugins.create("grader", name)
                try:
                    fresh.append(grader.grade(self.trace, self.result.validation))
                finally:
                    grader.close()
            except GradeError as exc:
                failures.append(f"{name}: {exc}")
            except DebugtraceError as exc:  # unknown or uninstalled grader
                failures.append(f"{name}: {exc}")
        replaced = {g.grader for g in fresh}
        self.result.grades = [g for g in self.result.grades if g.grader not in replaced] + fresh
        st.message = ", ".join(f"{g.grader} {g.score}/5" for g in fresh) or "no grade"
        if failures:
            raise StageFailed("; ".join([*([st.message] if fresh else []), *failures]))

    # -- helpers --------------------------------------------------------------------------------

    def project(self, tree: Path) -> ProjectSpec:
        from debugtrace.sandbox import ProjectSpec

        override = self.options.test_command or self.settings.test_command
        meta = self.trace.metadata.get("test_command")
        override = override or (meta if isinstance(meta, str) else None)
        if override:
            argv = tuple(shlex.split(override))
            return ProjectSpec(
                kind="custom",
                test_command=argv,
                report_format="junit" if any("{junit}" in a for a in argv) else None,
            )
        spec: ProjectSpec | None = self.host.plugins.detect_project(tree)
        if spec is None:
            raise StageFailed(
                "cannot tell how to run this project's tests; set DEBUGTRACE_TEST_COMMAND or the "
                "trace's metadata.test_command"
            )
        return spec

    def sandbox(self) -> tuple[Sandbox, str]:
        name = self.settings.sandbox
        plugins = self.host.plugins
        if name != "auto":
            sb: Sandbox = plugins.create("sandbox", name)
            reason = sb.unavailable()
            if reason:
                raise StageFailed(f"sandbox {name!r} cannot run: {reason}")
            return sb, f"sandbox: {name}"
        if "docker" in plugins.backends("sandbox"):
            try:
                sb = plugins.create("sandbox", "docker")
                reason = sb.unavailable()
            except Exception as exc:
                reason = str(exc)
            if not reason:
                return sb, "sandbox: docker (auto)"
        else:
            reason = "the docker sandbox is not installed"
        return plugins.create(
            "sandbox", "local"
        ), f"sandbox: local (auto; docker unusable: {reason})"

    def run_tests(
        self, sandbox: Sandbox, tree: Path, project: ProjectSpec, limits: object
    ) -> tuple[RunResult, dict[str, str] | None, list[str]]:
        from debugtrace.sandbox import ResourceLimits

        assert isinstance(limits, ResourceLimits)
        handle = sandbox.prepare(tree, project)
        try:
            cmd = _expand(project.test_command, sandbox.python)
            res = sandbox.run(handle, cmd, limits, fetch=[JUNIT])
            fmt = project.report_format
            if project.fallback_command and "No module named pytest" in res.output:
                cmd = _expand(project.fallback_command, sandbox.python)
                res = sandbox.run(handle, cmd, limits, fetch=[JUNIT])
                fmt = project.fallback_format
            return res, _parse(fmt, res, tree, cmd), cmd
        finally:
            sandbox.close(handle)

    def redact_test_ids(self, v: Validation) -> None:
        """Test ids come from test code's report: redact them like its output."""
        if self.redactor is None:
            return
        for ids in (
            v.fail_to_pass,
            v.pass_to_pass,
            v.pass_to_fail,
            v.fail_to_fail,
            v.added,
            v.removed,
            v.flaky,
        ):
            ids[:] = [self.redact(t) for t in ids]
        v.turned_green_by = {self.redact(t): seq for t, seq in v.turned_green_by.items()}

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
            Path(self._lock.lock_file).unlink(missing_ok=True)
            self._lock = None


def grader_names(host: FinalizeHost) -> list[str]:
    """The graders to run: ``DEBUGTRACE_GRADER`` (comma-separated), else ``openai`` when an API
    key is set and the SDK is installed, else ``heuristic``."""
    import os

    names = host.settings.names(host.settings.grader)
    if names:
        return names
    info = host.plugins.backends("grader").get("openai")
    if os.environ.get("OPENAI_API_KEY") and info is not None and not info.missing():
        return ["openai"]
    return ["heuristic"]


def regrade(host: FinalizeHost, trace_id: str, names: list[str] | None = None) -> Trace:
    """Grade a stored trace again with its stored test verdict (the tests are not re-run).

    Replaces the grades of the graders that ran and the ``grade`` stage; returns the trace.
    """
    storage = host.storage
    trace = storage.get(trace_id)
    run = _Run(host, trace, FinalizeOptions(), None)
    run.result = trace.result.model_copy(deep=True)
    run.result.stages = [s for s in run.result.stages if s.name != "grade"]
    with run.stage("grade") as st:
        run.grade(st, names or grader_names(host))
    return storage.get(trace_id)


def _expand(argv: tuple[str, ...], python: str) -> list[str]:
    return [a.replace("{python}", python).replace("{junit}", JUNIT) for a in argv]


def _parse(fmt: str | None, res: RunResult, tree: Path, cmd: list[str]) -> dict[str, str] | None:
    """Per-test outcomes; None when the runner should have reported tests and did not."""
    from debugtrace.finalize import testresults as tr

    if res.exit_code is None:
        return None
    try:
        if fmt == "junit":
            return tr.parse_junit(res.files[JUNIT], tree) if JUNIT in res.files else None
        parsed = None
        if fmt == "unittest":
            parsed = tr.parse_unittest(res.output, tree)
        elif fmt == "libtest":
            parsed = tr.parse_libtest(res.output)
        elif fmt == "go-json":
            parsed = tr.parse_go_json(res.output)
        if parsed:
            return parsed
    except ValueError:
        return None
    # No per-test report: the whole run is one test, passed when it exits 0.
    return {shlex.join(cmd): "passed" if res.exit_code == 0 else "failed"}


def _flaky(runs: list[dict[str, str]]) -> set[str]:
    if len(runs) < 2:
        return set()
    tests = set().union(*runs)
    return {t for t in tests if len({r.get(t) for r in runs}) > 1}


def _summary(v: Validation) -> str:
    verdict = "fix validated" if v.fix_validated else "fix not validated"
    return (
        f"{verdict}: {len(v.fail_to_pass)} fail_to_pass, {len(v.pass_to_pass)} pass_to_pass, "
        f"{len(v.pass_to_fail)} pass_to_fail, {len(v.fail_to_fail)} fail_to_fail"
        + (f", {len(v.flaky)} flaky" if v.flaky else "")
    )
