"""The grading prompt shared by LLM graders: the bug, the events in order, the test verdict.

Long traces are cut to a token budget keeping the start, every edit and the end, and the prompt
says what was cut. Tokens are estimated (about 4 characters each) because no tokenizer can be
downloaded at run time here; the estimate errs on the high side for code and logs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from debugtrace.grading import RUBRIC
from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
from debugtrace.results import Validation
from debugtrace.textutil import head_tail

__all__ = ["PROMPT_VERSION", "Prompt", "build_prompt", "estimate_tokens"]

PROMPT_VERSION = "grade-prompt-2"

SYSTEM = """You grade how well a developer (a person or an AI agent) debugged a bug, from the
trace of their session: their reasoning (hypotheses, observations, plans, conclusions with stated
confidence), the commands they ran with outputs, and the edits they made. You also get the verdict
of running the project's tests before and after their edits in a sandbox: fail_to_pass tests are
fixed by the edits, pass_to_fail tests were broken by them. A fix that does not validate cannot get
a high score, however good the reasoning looks. Judge the process, not only the result.

Writing a regression test first and running it to see it fail before changing the code is a
reproduction, and good practice: edits to test files do not start the fix, and test lines do not
count toward the size of the fix (only changes to non-test files do). A command that exits 0 but
whose output the developer then calls wrong also reproduces the bug. A fix that was not tested (no
test verdict) or could not be tested (the tests gave no verdict, for the reason given) is
unverified, neither validated nor failed: score it no higher than 3 overall, never as a failed fix,
and say in the summary which of the two it was.

Score each rubric item from 1 (poor) to 5 (excellent) with a one-line reason, then an overall score
1-5, a two-sentence summary, and short lists of strengths, weaknesses and actionable
recommendations. Rubric items:
""" + "\n".join(f"- {name}: {question}" for name, question in RUBRIC.items())

EVENT_CHARS = 4000
"""Longest rendering of one event (outputs and diffs keep their head and tail)."""


def estimate_tokens(text: str) -> int:
    """Token count estimate: one per 4 characters, rounded up (no tokenizer download needed)."""
    return (len(text) + 3) // 4


def render_event(ev: Event) -> str:
    """One event as prompt text."""
    number = f"#{ev.seq} " if ev.seq is not None else ""
    head = f"[{number}{ev.timestamp:%H:%M:%S}]"
    if isinstance(ev, ReasoningEvent):
        d = ev.details
        conf = f", confidence {d.confidence}" if d.confidence is not None else ""
        return head_tail(f"{head} {d.reasoning_type or 'reasoning'}{conf}: {d.text}", EVENT_CHARS)
    if isinstance(ev, CommandEvent):
        c = ev.details
        code = "" if c.exit_code is None else f" (exit {c.exit_code})"
        return head_tail(f"{head} $ {c.command}{code}\n{c.output}", EVENT_CHARS)
    assert isinstance(ev, EditEvent)
    return head_tail(f"{head} edit {ev.details.file}\n{ev.details.diff}", EVENT_CHARS)


def render_validation(v: Validation | None) -> str:
    """The test verdict as prompt text."""
    if v is None:
        return (
            "Test verdict: the fix was not tested (the tests could not be run). It is unverified, "
            "neither validated nor refuted; do not count it as a failed fix."
        )
    if v.fix_validated is None:
        reason = " ".join((v.could_not_test or "no test verdict").split())[:500]
        return (
            f"Test verdict: the fix could not be tested: {reason}. It is unverified, neither "
            "validated nor refuted; do not count it as a failed fix."
        )
    lines = [f"Test verdict: fix {'VALIDATED' if v.fix_validated else 'NOT validated'}."]
    if v.expected_fail_to_pass:
        missing = f"; missing: {', '.join(v.missing_expected[:20])}" if v.missing_expected else ""
        lines.append(
            f"Held-out tests expected to go from failing to passing: "
            f"{len(v.expected_fail_to_pass) - len(v.missing_expected)} of "
            f"{len(v.expected_fail_to_pass)} did{missing}"
        )
    for name in ("fail_to_pass", "pass_to_fail", "fail_to_fail", "flaky"):
        tests: list[str] = getattr(v, name)
        if tests:
            shown = ", ".join(tests[:20]) + (
                f" (+{len(tests) - 20} more)" if len(tests) > 20 else ""
            )
            lines.append(f"{name} ({len(tests)}): {shown}")
    lines.append(f"pass_to_pass: {len(v.pass_to_pass)} tests")
    return "\n".join(lines)


@dataclass(frozen=True)
class Prompt:
    """The messages for the model, what was cut, and a hash identifying the prompt's shape."""

    system: str
    user: str
    cut_events: int
    estimated_tokens: int

    @property
    def messages(self) -> list[dict[str, str]]:
        """Chat messages (system, user)."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    @property
    def hash(self) -> str:
        """sha256 of the whole prompt (stored with the grade as provenance)."""
        return hashlib.sha256(json.dumps(self.messages).encode()).hexdigest()[:16]


def build_prompt(trace: Trace, validation: Validation | None, budget_tokens: int) -> Prompt:
    """The grading prompt for ``trace``, its events cut to fit ``budget_tokens``.

    Kept, in this order of priority: every edit, the first events, the last events; the events
    cut from the middle are replaced by one line saying how many and of which kinds.
    """
    header = (
        f"Repository: {trace.repo_url}\nBug: {trace.bug_description}\n\n"
        f"{render_validation(validation)}\n\nTrace ({len(trace.events)} events, in order):"
    )
    rendered = [render_event(e) for e in trace.events]
    cost = [estimate_tokens(r) + 1 for r in rendered]
    budget = budget_tokens - estimate_tokens(SYSTEM) - estimate_tokens(header) - 50
    keep = _choose(trace.events, cost, budget)
    parts: list[str] = [header]
    cut_run: list[Event] = []
    cut_total = 0
    for i, text in enumerate(rendered):
        if i in keep:
            if cut_run:
                parts.append(_cut_line(cut_run))
                cut_run = []
            parts.append(text)
        else:
            cut_run.append(trace.events[i])
            cut_total += 1
    if cut_run:
        parts.append(_cut_line(cut_run))
    user = "\n\n".join(parts)
    return Prompt(SYSTEM, user, cut_total, estimate_tokens(SYSTEM) + estimate_tokens(user))


GAP_TOKENS = 25
"""What one "[... N events cut ...]" line may cost; every kept event can be followed by one."""


def _choose(events: list[Event], cost: list[int], budget: int) -> set[int]:
    n = len(events)
    if sum(cost) <= budget:
        return set(range(n))
    # Charge each kept event for the cut line that may follow it, so the whole stays in budget.
    cost = [c + GAP_TOKENS for c in cost]
    budget -= GAP_TOKENS  # a cut line before the first kept event
    keep: set[int] = set()
    used = 0
    # Edits first: they are what the verdict is about.
    for i, ev in enumerate(events):
        if isinstance(ev, EditEvent) and used + cost[i] <= budget:
            keep.add(i)
            used += cost[i]
    # Then alternate from both ends: how the session started and how it ended.
    lo, hi = 0, n - 1
    while lo <= hi:
        for i in (lo, hi):
            if i not in keep and used + cost[i] <= budget:
                keep.add(i)
                used += cost[i]
        if used >= budget:
            break
        lo, hi = lo + 1, hi - 1
    return keep


def _cut_line(cut: list[Event]) -> str:
    kinds: dict[str, int] = {}
    for ev in cut:
        kinds[ev.type] = kinds.get(ev.type, 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"[... {len(cut)} events cut to fit the token budget: {what} ...]"
