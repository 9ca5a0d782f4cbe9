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

import os
import re
import secrets
import shlex
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from debugtrace.errors import (
    CouldNotTest,
    DebugtraceError,
    EnvBuildError,
    FinalizeConflict,
    StageFailed,
    StageSkipped,
)
from debugtrace.finalize import FinalizeHost, FinalizeOptions
from debugtrace.finalize.runs import FROM_OUTPUT, OUTPUT_BYTES, SideRun, run_side
from debugtrace.model import EditEvent, Trace, TraceStatus, utcnow
from debugtrace.results import EditResult, Stage, StageName, TraceResult, Validation
from debugtrace.textutil import head_tail

if TYPE_CHECKING:
    from filelock import FileLock

    from debugtrace.finalize.workspace import Workspace
    from debugtrace.sandbox import ProjectSpec, ResourceLimits, Sandbox

__all__ = ["finalize", "grader_names", "regrade"]

LOG_BYTES = 16 * 1024
MESSAGE_BYTES = 1000
"""A stage's one-line message is cut to this (after redaction)."""
EDIT_MESSAGE_BYTES = 2000
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
        storage.save_result(trace_id, run.stored())
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
        self.previous: TraceResult | None = trace.result
        """The trace's result before this run: this run joins its history (see stored)."""
        self.workdir = self.settings.data_dir / "checkouts" / f"{trace.id}-{secrets.token_hex(4)}"
        self.before: Path | None = None
        self.after: Path | None = None
        self.base_sha: str | None = None
        self.applied: list[EditEvent] = []
        self.redactor = host.redactor
        self.after_spec: ProjectSpec | None = None
        self.ignored_command = False
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
        except CouldNotTest as exc:
            st.status, st.message = "failed", f"could not test: {exc}"
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
            self.host.storage.save_result(str(self.trace.id), self.stored())
            self._notify(st)

    def stored(self) -> TraceResult:
        """What to store: this run with the earlier ones, the latest complete run first (a run
        that fails before the tests never replaces a verdict)."""
        if self.previous is None:
            return self.result
        return self.previous.with_run(self.result)

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
        from debugtrace.finalize.runs import judge_broken
        from debugtrace.finalize.testresults import classify
        from debugtrace.results import Validation
        from debugtrace.sandbox import ResourceLimits

        assert self.after is not None and self.before is not None
        patch, expected = self.held_out()
        v = Validation(
            base_sha=self.base_sha, expected_fail_to_pass=list(expected), test_patch=bool(patch)
        )
        self.result.validation = v
        logs: list[str] = []
        try:
            broken_ok = self.changed_test_files()
            if patch:
                broken_ok |= self.apply_test_patch(patch, logs)
            # detected after the held-out patch: a Node runner's file list may name its files
            project = self.project(self.after)
            v.test_command = _bounded_argv(project.test_command)
            if self.ignored_command:
                logs.append(
                    "the trace's metadata.test_command was not run: a trace's own command runs "
                    "only where DEBUGTRACE_TRUST_TRACE_TEST_COMMAND=1, never with held-out tests"
                )
            sandbox, note = self.sandbox()
            sandbox.progress = self.say
            logs += [note, f"project: {project.kind}; command: {shlex.join(project.test_command)}"]
            limits = ResourceLimits(timeout_s=self.settings.test_timeout_s)
            if project.report_format in FROM_OUTPUT:  # every test's line must be kept
                limits = replace(limits, output_bytes=OUTPUT_BYTES)
            repeat = self.options.repeat or self.settings.repeat
            specs = {
                side: self.with_environment(tree, project, side, logs)
                for side, tree in (("before", self.before), ("after", self.after))
            }
            env = specs["after"].environment
            v.environment = env.description if env is not None else ""
            self.after_spec = specs["after"]
            runs = self.run_sides(sandbox, specs, limits, repeat, logs)
            notes = {r.note for side in runs.values() for r in side if r.note}
            if notes:  # the sandbox ran them elsewhere (an image with its own interpreter)
                v.environment += "; in the sandbox: " + "; ".join(sorted(notes))
            before = judge_broken(runs["before"][-1].report, runs["after"][-1].report, broken_ok)
            after = runs["after"][-1].report.outcomes
            flaky = _flaky([r.report.outcomes for r in runs["before"]]) | _flaky(
                [r.report.outcomes for r in runs["after"]]
            )
            found = classify(before, after, flaky, expected)
            found.base_sha, found.test_command = v.base_sha, v.test_command
            found.environment, found.test_patch = v.environment, v.test_patch
            self.result.validation = v = found
            if self.options.per_edit:
                self.per_edit(sandbox, self.after_spec or project, limits, v)
        except CouldNotTest as exc:
            v.fix_validated = None
            v.could_not_test = self.clean(str(exc), MESSAGE_BYTES)
            raise
        except EnvBuildError as exc:
            why = f"the test environment could not be built: {exc}"
            v.fix_validated = None
            v.could_not_test = self.clean(why, MESSAGE_BYTES)
            raise CouldNotTest(why) from None
        finally:
            st.log = "\n".join(logs)
        st.message = _summary(v)

    def run_sides(
        self,
        sandbox: Sandbox,
        specs: dict[str, ProjectSpec],
        limits: ResourceLimits,
        repeat: int,
        logs: list[str],
    ) -> dict[str, list[SideRun]]:
        """Run each side ``repeat`` times; the two sides at once when the sandbox keeps
        concurrent runs apart (their own network and process namespaces), else one after the
        other. Raises :class:`CouldNotTest` for the first side (before, then after) that gave
        no verdict."""
        from concurrent.futures import ThreadPoolExecutor

        trees = {"before": self.before, "after": self.after}

        def side_runs(side: str) -> list[tuple[str, SideRun]]:
            spec, tree = specs[side], trees[side]
            assert tree is not None
            out = []
            for i in range(repeat):
                label = f"{side} run {i + 1}" if repeat > 1 else f"{side} run"
                run = run_side(sandbox, sandbox.python_for(spec), tree, spec, limits, side)
                out.append((label, run))
                if run.problem:
                    break
            return out

        if sandbox.isolates_runs:
            with ThreadPoolExecutor(2, thread_name_prefix="debugtrace-tests") as pool:
                done = dict(zip(specs, pool.map(side_runs, specs), strict=True))
        else:
            done = {side: side_runs(side) for side in specs}
        runs: dict[str, list[SideRun]] = {}
        for side, labelled in done.items():
            logs += [self.run_log(run, label) for label, run in labelled]
            runs[side] = [run for _, run in labelled]
            for run in runs[side]:
                self.redact_report(run)
        for side in specs:
            problem = next((r.problem for r in runs[side] if r.problem), None)
            if problem:
                raise CouldNotTest(problem)
        return runs

    def held_out(self) -> tuple[str, tuple[str, ...]]:
        """The held-out test patch and expected fail_to_pass ids: the options', else the
        trace's."""
        held = self.trace.held_out
        patch = self.options.test_patch
        if patch is None:
            patch = held.test_patch if held is not None else ""
        expected = self.options.fail_to_pass
        if expected is None:
            expected = tuple(held.fail_to_pass) if held is not None else ()
        return patch or "", tuple(expected)

    def changed_test_files(self) -> set[str]:
        """The test files the trace's applied edits changed (a new regression test in one of
        them may fail to import before the fix)."""
        return {e.details.file for e in self.applied if is_test_path(e.details.file)}

    def apply_test_patch(self, patch: str, logs: list[str]) -> set[str]:
        """Apply the held-out test patch to both checkouts; the files it changed."""
        from debugtrace.finalize.patching import apply_diff
        from debugtrace.gitdiff import split_diff

        assert self.before is not None and self.after is not None
        deadline = time.monotonic() + self.settings.apply_timeout_s
        files: set[str] = set()
        for part in split_diff(patch if patch.endswith("\n") else patch + "\n"):
            for tree in (self.before, self.after):
                out = apply_diff(tree, part.file, part.diff, deadline=deadline)
                if out.tainted:
                    self.discard_checkouts()
                    raise CouldNotTest(f"the held-out test patch ({part.file}) changed .git")
                if out.status != "applied":
                    first = (out.message.splitlines() or [""])[0]
                    raise CouldNotTest(
                        f"the held-out test patch does not apply ({part.file}): {first}"
                    )
            files.add(part.file)
        logs.append(f"held-out test patch applied to both runs: {', '.join(sorted(files))}")
        return files

    def with_environment(
        self, tree: Path, project: ProjectSpec, side: str, logs: list[str]
    ) -> ProjectSpec:
        """``project`` with its test environment (built or reused) and support files."""
        from debugtrace.environments.build import build_environment

        _write_support_files(tree, project)
        env = build_environment(tree, project, self.settings, self.say)
        if env is not None and env.kind == "python":
            self.write_version_module(tree, logs)
        if env is not None:
            logs.append(f"{side} environment: {env.description}")
        return replace(project, environment=env)

    def write_version_module(self, tree: Path, logs: list[str]) -> None:
        """Write the version module a VCS build plugin would (hatch-vcs, setuptools-scm) when
        the checkout lacks it: the package imports it, and a checkout is never built."""
        from debugtrace.environments.pydeps import read_project_meta

        meta = read_project_meta(tree)
        if meta.version_file is None:
            return
        target = tree / meta.version_file
        try:
            parent = target.parent.resolve(strict=True)
        except OSError:
            return
        root = tree.resolve()
        # never through a link into .git (the name itself cannot say .git)
        inside = parent.is_relative_to(root) and not parent.is_relative_to(root / ".git")
        if inside and not os.path.lexists(target):
            target.write_bytes(meta.version_module())
            logs.append(f"wrote {meta.version_file} (version {meta.version}): the build would")

    def say(self, text: str) -> None:
        """Progress of a long step (an environment build), shown as the running stage's log."""
        stage = self.result.stages[-1] if self.result.stages else None
        if stage is not None and stage.status == "running":
            stage.log = head_tail(stage.log + text + "\n", LOG_BYTES)
            self._notify(stage)

    def run_log(self, run: SideRun, label: str) -> str:
        """The stage log's lines for one run (its output redacted and bounded)."""
        res = run.result
        count = f"{len(run.report.outcomes)} tests" if run.problem is None else "no verdict"
        where = f" [{run.note}]" if run.note else ""
        return (
            f"--- {label}{where}: {shlex.join(run.argv)} -> exit {res.exit_code}"
            f"{' (timed out)' if res.timed_out else ''}, {count}, "
            f"{res.duration_s:.1f}s\n{self.clean(res.output, LOG_BYTES // 4)}"
        )

    def per_edit(
        self, sandbox: Sandbox, project: ProjectSpec, limits: object, v: Validation
    ) -> None:
        """Apply the edits one at a time on a fresh checkout; note which made each test pass."""
        from debugtrace.finalize.patching import apply_diff
        from debugtrace.gitdiff import split_diff
        from debugtrace.sandbox import ResourceLimits

        assert isinstance(limits, ResourceLimits) and self.base_sha
        ws = self.new_workspace()
        mirror = ws.mirror_path(self.trace.repo_url)
        tree = ws.checkout(self.trace.repo_url, mirror, self.base_sha, self.workdir / "per-edit")
        pending = set(v.fail_to_pass)
        green: dict[str, int] = {}
        deadline = time.monotonic() + self.settings.apply_timeout_s
        patch, _ = self.held_out()
        for part in split_diff(patch) if patch else []:
            apply_diff(tree, part.file, part.diff, deadline=deadline)
        try:
            _write_support_files(tree, project)
        except CouldNotTest:
            return  # as in the main runs: never written over what the checkout holds
        python = sandbox.python_for(project)
        for ev in self.applied:
            if apply_diff(tree, ev.details.file, ev.details.diff, deadline=deadline).tainted:
                shutil.rmtree(tree, ignore_errors=True)
                break
            run = run_side(sandbox, python, tree, project, limits, f"edit #{ev.seq}")
            self.redact_report(run)
            for test in sorted(pending):
                if run.report.outcomes.get(test) == "passed":
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
        # the trace's author may choose the command only where trusted, and never when the fix
        # is checked against held-out tests: the command also writes the report
        patch, expected = self.held_out()
        if self.settings.trust_trace_test_command and not (patch or expected):
            override = override or (meta if isinstance(meta, str) else None)
        elif isinstance(meta, str) and not override:
            self.ignored_command = True
        spec: ProjectSpec | None = self.host.plugins.detect_project(tree)
        if override:
            # the detected project still decides the environment the command runs in
            argv = tuple(shlex.split(override))
            fmt = "junit" if any("{junit}" in a for a in argv) else None
            return ProjectSpec(
                kind=spec.kind if spec is not None else "custom",
                test_command=argv,
                report_format=fmt,
                dependency_files=spec.dependency_files if spec is not None else (),
            )
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

    def redact_report(self, run: SideRun) -> None:
        """Test ids come from test code: redacted before they are compared with the held-out
        ids (redacted when they came in) and stored. Two ids that become one are a
        :attr:`SideRun.problem`, never merged."""
        if self.redactor is None or run.problem:
            return
        report = run.report
        outcomes = {self.redact(t): o for t, o in report.outcomes.items()}
        if len(outcomes) != len(report.outcomes):
            run.problem = "two test ids are the same once secrets in them are redacted"
        report.outcomes = outcomes
        report.broken = {self.redact(f): why for f, why in report.broken.items()}

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
    run.previous = None  # the same run, graded again: its history stays as it is
    run.result = trace.result.model_copy(deep=True)
    run.result.stages = [s for s in run.result.stages if s.name != "grade"]
    with run.stage("grade") as st:
        run.grade(st, names or grader_names(host))
    return storage.get(trace_id)


def _write_support_files(tree: Path, project: ProjectSpec) -> None:
    """Write the files the runner needs (a reporter) into the checkout; raises
    :class:`CouldNotTest` when the checkout already holds one of those names (never written
    over, never through a link)."""
    for name, data in project.support_files.items():
        target = tree / name
        if "/" in name or os.path.lexists(target):
            raise CouldNotTest(f"the checkout already has {name}, which the runner needs")
        target.write_bytes(data)


def _bounded_argv(argv: tuple[str, ...]) -> list[str]:
    """The command as stored: at most 200 words of at most 1000 characters (a test script's
    globs can expand to many files)."""
    words = [w if len(w) <= 1000 else w[:1000] + "..." for w in argv[:200]]
    return words + ([f"... ({len(argv) - 200} more)"] if len(argv) > 200 else [])


def _flaky(runs: list[dict[str, str]]) -> set[str]:
    if len(runs) < 2:
        return set()
    tests = set().union(*runs)
    return {t for t in tests if len({r.get(t) for r in runs}) > 1}


def _summary(v: Validation) -> str:
    verdict = "fix validated" if v.fix_validated else "fix not validated"
    if v.missing_expected:
        verdict += f" ({len(v.missing_expected)} expected fail_to_pass missing)"
    return (
        f"{verdict}: {len(v.fail_to_pass)} fail_to_pass, {len(v.pass_to_pass)} pass_to_pass, "
        f"{len(v.pass_to_fail)} pass_to_fail, {len(v.fail_to_fail)} fail_to_fail"
        + (f", {len(v.flaky)} flaky" if v.flaky else "")
    )
