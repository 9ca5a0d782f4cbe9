"""Plain-text views of traces for the terminal (``debugtrace show`` / ``list`` / ``finalize``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
from debugtrace.results import Stage, TraceResult, Validation
from debugtrace.storage import TracePage, could_not_test, latest_run, outcome

__all__ = [
    "ExportProgress",
    "StageProgress",
    "render_grades",
    "render_history",
    "render_page",
    "render_result",
    "render_trace",
]

_PREVIEW_LINES = 8


def _indent(text: str, full: bool, prefix: str = "      ") -> str:
    lines = text.splitlines()
    if not full and len(lines) > _PREVIEW_LINES:
        cut = len(lines) - _PREVIEW_LINES
        lines = [*lines[:_PREVIEW_LINES], f"... {cut} more lines (--full shows all)"]
    return "".join(f"{prefix}{line}\n" for line in lines)


def render_event(ev: Event, full: bool = False) -> str:
    """One event as a timeline entry: number, time, kind, and its content."""
    head = f"  #{ev.seq:<4} {ev.timestamp:%Y-%m-%d %H:%M:%S}  "
    if isinstance(ev, ReasoningEvent):
        d = ev.details
        kind = d.reasoning_type or "reasoning"
        conf = f" ({d.confidence} confidence)" if d.confidence is not None else ""
        return f"{head}{kind}{conf}\n{_indent(d.text, full)}"
    if isinstance(ev, CommandEvent):
        c = ev.details
        status = "" if c.exit_code is None else f"  [exit {c.exit_code}]"
        took = "" if c.duration_s is None else f"  {c.duration_s:.2f}s"
        return f"{head}$ {c.command}{status}{took}\n{_indent(c.output, full)}"
    assert isinstance(ev, EditEvent)
    diff = ev.details.diff
    plus = sum(
        1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    )
    minus = sum(
        1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")
    )
    return f"{head}edit {ev.details.file} (+{plus} -{minus})\n{_indent(diff, full)}"


def render_trace(trace: Trace, full: bool = False) -> str:
    """The whole trace: header, events as a timeline, then finalize results if any."""
    out = [
        f"trace {trace.id}  [{trace.status}]\n",
        f"  developer  {trace.developer_id}\n",
        f"  repository {trace.repo_url}\n",
        f"  base       {trace.base_commit or '(default branch head)'}"
        + (f"  branch {trace.branch}" if trace.branch else "")
        + "\n",
        f"  created    {trace.created_at:%Y-%m-%d %H:%M:%S %Z}\n" if trace.created_at else "",
        f"  bug        {trace.bug_description}\n",
        f"\nevents ({len(trace.events)}):\n",
    ]
    out += [render_event(ev, full) for ev in trace.events]
    if trace.held_out is not None:
        out.append(_render_held_out(trace))
    if trace.result.stages or trace.result.history:
        out.append("\n" + render_result(trace))
    return "".join(out)


def _render_held_out(trace: Trace) -> str:
    held = trace.held_out
    assert held is not None
    patch = held.test_patch
    files = [line[6:] for line in patch.splitlines() if line.startswith("+++ b/")]
    out = ["\nheld-out tests:\n"]
    if patch:
        out.append(
            f"  test patch: {len(patch.splitlines())} lines, files {', '.join(files[:10])}\n"
        )
    if held.fail_to_pass:
        shown = ", ".join(held.fail_to_pass[:10])
        more = " ..." if len(held.fail_to_pass) > 10 else ""
        out.append(f"  must go from failing to passing ({len(held.fail_to_pass)}): {shown}{more}\n")
    return "".join(out)


def render_result(trace: Trace, history: bool = True) -> str:
    """What finalize found: stages, the environment, held-out tests, the verdict (``fix
    validated: yes`` / ``fix validated: no`` / ``could not test: <reason>``), grades, and (with
    ``history``) one line per earlier run."""
    r = trace.result
    out = [f"finalize of {trace.id}:\n"]
    latest = latest_run(r)
    if latest is not r:
        out.append(
            f"  latest run{_when(latest)}: {outcome(latest)}\n"
            f"  the verdict stands from the run{_when(r)}:\n"
        )
    for st in r.stages:
        took = f" {st.duration_s:.2f}s" if st.duration_s is not None else ""
        out.append(f"  {st.name:<10} {st.status:<8}{took}  {st.message}\n")
    v = r.validation
    if v is not None and v.environment:
        out.append(f"  environment: {v.environment}\n")
    if v is not None and (v.test_patch or v.expected_fail_to_pass):
        out.append(f"  held-out tests: {_held_out(v)}\n")
    if v is not None and v.fix_validated is not None:
        out.append(f"  fix validated: {'yes' if v.fix_validated else 'no'}\n")
    elif (reason := could_not_test(r)) is not None:
        out.append(f"  could not test: {reason}\n")
    if v is not None:
        for name in (
            "fail_to_pass",
            "pass_to_pass",
            "pass_to_fail",
            "fail_to_fail",
            "flaky",
            "missing_expected",
        ):
            tests: list[str] = getattr(v, name)
            if tests:
                out.append(f"    {name} ({len(tests)}): {', '.join(tests[:10])}")
                out.append(" ...\n" if len(tests) > 10 else "\n")
    out.append(render_grades(trace, header=False))
    if history and r.history:
        out.append(render_history(trace))
    return "".join(out)


def _when(run: TraceResult) -> str:
    return f" of {run.finalized_at:%Y-%m-%d %H:%M:%S %Z}".rstrip() if run.finalized_at else ""


def _held_out(v: Validation) -> str:
    parts = ["test patch applied to both runs"] if v.test_patch else []
    if v.expected_fail_to_pass:
        expected = len(v.expected_fail_to_pass)
        found = expected - len(v.missing_expected)
        parts.append(f"{found} of {expected} expected fail_to_pass tests did")
    return "; ".join(parts)


def render_history(trace: Trace) -> str:
    """The trace's earlier finalize runs, newest first: when, the verdict (or the stage that
    failed, with its message) and the score."""
    runs = trace.result.history
    out = [f"earlier runs ({len(runs)}):\n"]
    for run in runs:
        when = f"{run.finalized_at:%Y-%m-%d %H:%M:%S}" if run.finalized_at else "(unfinished)"
        score = run.score()
        graded = f"  score {score}/5" if score is not None else ""
        out.append(f"  {when:<19}  {outcome(run)}{graded}\n")
    return "".join(out)


def render_grades(trace: Trace, header: bool = True) -> str:
    """Each grade: score, grader and model, summary, rubric, strengths and weaknesses."""
    out = [f"grades of {trace.id}:\n"] if header else []
    for g in trace.result.grades:
        model = f" ({g.model})" if g.model else ""
        out.append(f"  grade {g.score}/5 by {g.grader}{model}: {g.summary}\n")
        for name, item in g.rubric.items():
            out.append(f"    {name:<20} {item.score}/5  {item.reason}\n")
        for label, items in (("+", g.strengths), ("-", g.weaknesses), (">", g.recommendations)):
            out += [f"    {label} {text}\n" for text in items]
    return "".join(out)


def render_page(page: TracePage) -> str:
    """A listing, one trace a line, and how to get the next page."""
    if not page.items:
        return "no traces\n"
    out = [
        f"{s.id}  {s.created_at:%Y-%m-%d %H:%M}  {s.status:<10} {s.event_count:>5} events  "
        f"{s.developer_id}  {' '.join(s.bug_description.split())[:60]}\n"
        for s in page.items
    ]
    if page.next_cursor:
        out.append(f"more: --cursor {page.next_cursor}\n")
    return "".join(out)


class StageProgress:
    """Shows finalize's stages on a terminal: a spinner while one runs, a line when it ends.

    Quiet when ``stream`` is not a terminal (logs and pipes get only the final report).
    """

    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty()
        self._status: Any = None
        if self.enabled:
            from rich.console import Console

            self.console = Console(file=stream, highlight=False)

    def __call__(self, stage: Stage) -> None:
        if not self.enabled:
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        if stage.status == "running":
            self._status = self.console.status(f"{stage.name} ...")
            self._status.start()
            return
        color = {"ok": "green", "failed": "red", "error": "red", "skipped": "yellow"}
        took = f"{stage.duration_s:.1f}s" if stage.duration_s is not None else ""
        self.console.print(
            f"[{color.get(stage.status, 'white')}]{stage.status:<8}[/] {stage.name:<10} "
            f"{took:>7}  {stage.message}",
            markup=True,
        )


class ExportProgress:
    """A progress bar of exported traces on stderr when it is a terminal; silent otherwise."""

    EVERY = 64
    """Redraw after this many traces (a redraw per trace would cost more than some traces)."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.bar: Any = None
        self.task: Any = None
        self.done = 0

    def __enter__(self) -> Callable[[int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        count: Any = (
            MofNCompleteColumn() if self.total is not None else TextColumn("{task.completed}")
        )
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("exporting traces"),
            BarColumn(),
            count,
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("export", total=self.total)
        return self

    def __call__(self, n: int) -> None:
        self.done = n
        if n % self.EVERY == 0:
            self.bar.update(self.task, completed=n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
            self.bar.stop()
