"""The ``heuristic`` grader: a deterministic, documented rubric over the trace and its verdict.

No model, no network: the same trace and verdict always get the same grade. Each rubric item is
scored 1-5 by the rules below (see ``docs/grading.md``); the overall score is their mean, rounded,
capped at 2 when the fix did not validate, at 3 when the tests did not run or could not give a
verdict (an untested fix is judged like one without a verdict, never like a failed one), and at 4
when any item scored 3 or less.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from debugtrace.grading import Grader
from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
from debugtrace.results import Grade, RubricScore, Validation

__all__ = ["HeuristicGrader"]

RUBRIC_VERSION = "heuristic-1"
_FAILURE = re.compile(r"\b(FAILED|FAIL|ERROR|Error|Traceback|AssertionError|panicked|exception)\b")

RECOMMENDATIONS = {
    "hypothesis_quality": "State a specific, testable hypothesis about the cause before editing.",
    "evidence_gathering": "Test each hypothesis with a command (a failing test, a print, a grep) "
    "before changing code.",
    "reproduction": "Reproduce the bug with a failing command or test before the first edit.",
    "fix_minimality": "Keep the fix small and focused on the cause; leave unrelated changes out.",
    "verification": "Run the tests again after the fix and check that the failing one passes.",
    "calibration": "Match stated confidence to the evidence; say 'low' until the tests agree.",
}


@dataclass(frozen=True)
class _Facts:
    """What the rules look at, read once from the trace."""

    events: list[Event]
    first_edit: int | None
    last_edit: int | None
    validation: Validation | None

    def before_first_edit(self) -> list[Event]:
        end = self.first_edit if self.first_edit is not None else len(self.events)
        return self.events[:end]


def _failed(ev: CommandEvent) -> bool:
    d = ev.details
    return (d.exit_code not in (None, 0)) or bool(_FAILURE.search(d.output or ""))


def _changed_lines(ev: EditEvent) -> int:
    return sum(
        1
        for line in ev.details.diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


class HeuristicGrader(Grader):
    """Rules, not a model: reproducible grades that need nothing but the trace."""

    name = "heuristic"
    version = "1"

    def grade(self, trace: Trace, validation: Validation | None) -> Grade:
        start = time.perf_counter()
        edits = [i for i, e in enumerate(trace.events) if isinstance(e, EditEvent)]
        # Could not test (fix_validated None): no verdict, so the rules see none.
        tested = (
            validation if validation is not None and validation.fix_validated is not None else None
        )
        f = _Facts(trace.events, edits[0] if edits else None, edits[-1] if edits else None, tested)
        rubric = {
            "hypothesis_quality": self._hypotheses(f),
            "evidence_gathering": self._evidence(f),
            "reproduction": self._reproduction(f),
            "fix_minimality": self._minimality(f),
            "verification": self._verification(f),
            "calibration": self._calibration(f),
        }
        mean = sum(r.score for r in rubric.values()) / len(rubric)
        score = int(mean + 0.5)
        if tested is None:
            cap, verdict = 3, "the fix could not be tested"
            if validation is not None and validation.could_not_test:
                verdict += f" ({validation.could_not_test[:200]})"
        elif tested.fix_validated:
            cap, verdict = 5, "the fix validated"
        else:
            cap, verdict = 2, "the fix did not validate"
        if min(r.score for r in rubric.values()) <= 3:
            cap = min(cap, 4)  # a 5 means every part of the process was good
        score = max(1, min(cap, score))
        ranked = sorted(rubric.items(), key=lambda kv: (kv[1].score, kv[0]))
        summary = (
            f"Heuristic grade {score}/5: {verdict}. Strongest: {ranked[-1][0].replace('_', ' ')}; "
            f"weakest: {ranked[0][0].replace('_', ' ')}."
        )
        return Grade(
            score=score,
            summary=summary,
            strengths=[r.reason for _, r in sorted(rubric.items()) if r.score >= 4],
            weaknesses=[r.reason for _, r in sorted(rubric.items()) if r.score <= 2],
            recommendations=[RECOMMENDATIONS[n] for n, r in sorted(rubric.items()) if r.score <= 2],
            rubric=rubric,
            grader=self.name,
            grader_version=self.version,
            rubric_version=RUBRIC_VERSION,
            duration_s=round(time.perf_counter() - start, 6),
        )

    # -- the rules ------------------------------------------------------------------------------

    @staticmethod
    def _hypotheses(f: _Facts) -> RubricScore:
        early = [e for e in f.before_first_edit() if isinstance(e, ReasoningEvent)]
        hyps = [e for e in early if (e.details.reasoning_type or "").lower() == "hypothesis"]
        if any(len(h.details.text.split()) >= 6 for h in hyps):
            return RubricScore(score=5, reason="stated a specific hypothesis before editing")
        if hyps:
            return RubricScore(score=4, reason="stated a hypothesis before editing, tersely")
        if early:
            return RubricScore(score=3, reason="reasoned before editing but named no hypothesis")
        if any(isinstance(e, ReasoningEvent) for e in f.events):
            return RubricScore(score=2, reason="reasoning came only after the first edit")
        return RubricScore(score=1, reason="no reasoning was recorded")

    @staticmethod
    def _evidence(f: _Facts) -> RubricScore:
        early = f.before_first_edit()
        first_hyp = next(
            (
                i
                for i, e in enumerate(early)
                if isinstance(e, ReasoningEvent) and e.details.reasoning_type == "hypothesis"
            ),
            None,
        )
        cmds_after_hyp = (
            sum(isinstance(e, CommandEvent) for e in early[first_hyp + 1 :])
            if first_hyp is not None
            else 0
        )
        if cmds_after_hyp >= 2:
            return RubricScore(
                score=5, reason=f"tested the hypothesis with {cmds_after_hyp} commands"
            )
        if cmds_after_hyp == 1:
            return RubricScore(score=4, reason="tested the hypothesis with a command")
        if any(isinstance(e, CommandEvent) for e in early):
            return RubricScore(
                score=3, reason="ran commands before editing, not to test a hypothesis"
            )
        if any(isinstance(e, CommandEvent) for e in f.events):
            return RubricScore(score=2, reason="gathered evidence only after editing")
        return RubricScore(score=1, reason="ran no commands at all")

    @staticmethod
    def _reproduction(f: _Facts) -> RubricScore:
        early = [e for e in f.before_first_edit() if isinstance(e, CommandEvent)]
        if any(_failed(e) for e in early):
            return RubricScore(score=5, reason="reproduced the failure before the first edit")
        if early:
            return RubricScore(score=3, reason="ran commands first, but none showed the failure")
        if f.first_edit is None:
            return RubricScore(score=2, reason="no edit and no reproduction")
        return RubricScore(score=1, reason="edited without reproducing the bug first")

    @staticmethod
    def _minimality(f: _Facts) -> RubricScore:
        edits = [e for e in f.events if isinstance(e, EditEvent)]
        if not edits:
            return RubricScore(score=1, reason="made no edit")
        lines = sum(_changed_lines(e) for e in edits)
        files = len({e.details.file for e in edits})
        score = (
            5
            if lines <= 10
            else 4
            if lines <= 40
            else 3
            if lines <= 120
            else 2
            if lines <= 400
            else 1
        )
        reason = f"the fix changes {lines} lines in {files} file{'s' * (files != 1)}"
        v = f.validation
        if v is not None and v.pass_to_fail:
            score = min(score, 2)
            reason += f" and breaks {len(v.pass_to_fail)} passing test(s)"
        return RubricScore(score=score, reason=reason)

    @staticmethod
    def _verification(f: _Facts) -> RubricScore:
        ran_after = f.last_edit is not None and any(
            isinstance(e, CommandEvent) for e in f.events[f.last_edit + 1 :]
        )
        v = f.validation
        if v is None:
            return (
                RubricScore(score=3, reason="ran commands after the fix; tests could not run")
                if ran_after
                else RubricScore(score=2, reason="did not re-run anything after the fix")
            )
        if v.fix_validated:
            return (
                RubricScore(score=5, reason="re-ran the tests after the fix, and it validated")
                if ran_after
                else RubricScore(score=3, reason="the fix validated, but was not re-tested by hand")
            )
        return (
            RubricScore(score=2, reason="re-ran after the fix, but it does not validate")
            if ran_after
            else RubricScore(score=1, reason="the fix does not validate and was not re-tested")
        )

    @staticmethod
    def _calibration(f: _Facts) -> RubricScore:
        stated = [
            e.details.confidence_value
            for e in f.events
            if isinstance(e, ReasoningEvent) and e.details.confidence_value is not None
        ]
        if not stated:
            return RubricScore(score=3, reason="stated no confidence")
        c = stated[-1]
        v = f.validation
        if v is None:
            return RubricScore(score=3, reason=f"final confidence {c:.2f}, outcome unknown")
        if v.fix_validated:
            score = 5 if c >= 0.7 else 4 if c >= 0.4 else 3
            return RubricScore(score=score, reason=f"final confidence {c:.2f}; the fix validated")
        score = 1 if c >= 0.7 else 2 if c >= 0.4 else 4
        return RubricScore(
            score=score, reason=f"final confidence {c:.2f}; the fix did not validate"
        )
