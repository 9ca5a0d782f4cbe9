"""The ``heuristic`` grader: a deterministic, documented rubric over the trace and its verdict.

No model, no network: the same trace and verdict always get the same grade. Each rubric item is
scored 1-5 by the rules below (see ``docs/grading.md``); the overall score is their mean, rounded,
capped at 2 when the fix did not validate, at 3 when it was not tested (no test verdict) or could
not be tested (an untested fix is judged like one without a verdict, never like a failed one), and
at 4 when any item scored 3 or less.

Test-first debugging is reproduction: edits to test files (:func:`is_test_file`) made before the
first edit to any other file are not "the fix". The fix starts at the first edit to a non-test
file, so a regression test written, run and seen failing before it reproduces the bug, and test
lines never count as fix size. A command that exits 0 reproduces the bug too when the reasoning
right after it says its output is wrong (:func:`says_output_is_wrong`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from debugtrace.grading import Grader
from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
from debugtrace.results import Grade, RubricScore, Validation

__all__ = ["RUBRIC_VERSION", "HeuristicGrader", "is_test_file", "says_output_is_wrong"]

RUBRIC_VERSION = "heuristic-2"
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

TestVerdict = Literal["validated", "not validated", "not tested", "could not test"]
"""What the grade knew of the tests, recorded on the grade as ``test_verdict``: the fix validated,
did not, was not tested (no test verdict at all: the tests stage did not run, say because no edit
applied) or could not be tested (the tests ran but gave no verdict: ``could_not_test`` says why)."""

# -- test files -----------------------------------------------------------------------------------

_TEST_DIRS = frozenset({"tests", "__tests__", "testdata"})
"""Directories whose files are tests wherever they are (``tests/``, Jest's ``__tests__/``, Go's
``testdata/``)."""
_TEST_ROOTS = frozenset({"test", "spec"})
"""Directories whose files are tests at the top of the repository or right under a ``src``
directory (Maven's and Gradle's ``src/test/``); elsewhere ``test`` is often shipped code
(``django/test/``)."""
_TEST_NAME = re.compile(
    r"^test_.+\.py$|^tests?\.py$|^conftest\.py$|_test\.(?:py|go)$|_spec\.rb$"
    r"|\.test\.[cm]?[jt]sx?$|\.spec\.[^.]+$|[A-Z]\w*(?:Test|Tests|IT)\.(?:java|kt)$"
)
"""File names that are tests: ``test_*.py``, Django's ``tests.py``, ``conftest.py``,
``*_test.py``, ``*_test.go``, ``*_spec.rb``, ``*.test.js`` (``.ts``, ``.jsx``, ``.tsx``,
``.mjs``, ``.cjs``, ...), ``*.spec.*``, JUnit's ``FooTest.java`` / ``FooTests.kt`` /
``FooIT.java``."""


def is_test_file(path: str) -> bool:
    """Whether ``path`` (relative to the repository; ``/`` or ``\\`` separators) is a test file.

    A test file is one under a ``tests/``, ``__tests__/`` or ``testdata/`` directory (at any
    depth), under a ``test/`` or ``spec/`` directory at the top or right under ``src/``
    (``src/test/java/...``), or one named as :data:`_TEST_NAME` says (``test_*.py``,
    ``tests.py``, ``*_test.go``, ``*.test.ts``, ``FooTest.java``...). Names are compared
    case-sensitively.
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return False
    *dirs, name = parts
    for i, d in enumerate(dirs):
        if d in _TEST_DIRS or (d in _TEST_ROOTS and (i == 0 or dirs[i - 1] == "src")):
            return True
    return bool(_TEST_NAME.search(name))


# -- "that output is wrong" -----------------------------------------------------------------------

_WRONG_PHRASES = (
    r"\bwrong\b",
    r"\bincorrect(?:ly)?\b",
    r"\bunexpected(?:ly)?\b",
    r"(?:\b(?:is|was|are|were)|'s)\s+not\s+(?:right|correct|what\s+(?:i|we)\s+expected)\b",
    r"\b(?:isn't|wasn't|aren't)\s+(?:right|correct|what\s+(?:i|we)\s+expected)\b",
    # "should be 1.0", "should return None", "should raise ValueError": a value, not "should be
    # fine" or "the fix should be small".
    r"\bshould\s+(?:have\s+)?(?:be|been|return(?:ed)?|give|print(?:ed)?|output|yield|equal|raise)\s+"
    r"(?:[`'\"\d\[({-]|(?:true|false|none|null|nil|zero|empty|nan)\b|an?\s+\w*(?:error|exception)\b"
    r"|\w*(?:error|exception)\b)",
    r"(?<!as )\bexpected\b(?:[^.;!?\n]|\.\d){1,60}?(?:\bbut\b|,)\s*(?:\w+\s+)?"
    r"(?:got|gets|get|received|returned|returns|printed|prints|gave|gives)\b",
    r"\b(?:returns?|returned|gives?|gave|prints?|printed|outputs?|yields?|yielded|got|gets"
    r"|evaluates\s+to|comes\s+back\s+as|came\s+back\s+as)\b(?:[^.;!?\n]|\.\d){1,80}?\binstead\s+of\b",
    r"\b(?:bug|issue|problem|failure|behaviou?r)\s+(?:is\s+)?confirmed\b",
    r"\bconfirm(?:s|ed)\s+(?:the\s+|this\s+|that\s+)?(?:bug|issue|problem)\b",
    r"\breproduc(?:ed|es)\b",
)
WRONG_OUTPUT = re.compile("|".join(f"(?:{p})" for p in _WRONG_PHRASES), re.IGNORECASE)
"""Phrases that call a command's output wrong: "wrong", "incorrect", "unexpected", "is not
right / correct", "should be <a value>" (a number, a quoted or bracketed value, True / False /
None / null / zero / empty, an error), "expected X but got Y", "returns X instead of Y", "bug
confirmed", "confirms the bug", "reproduced" / "reproduces"."""

_CLAUSE = re.compile(r"\.(?!\d)|[;!?,:\n]|\bbut\b|\bhowever\b", re.IGNORECASE)
_NEGATION = re.compile(
    r"^(?:not|no|nothing|never|none|nor|neither|without|cannot|hardly|\w+n't"
    r"|(?:do|does|did|is|was|are|were|ca|could|would|wo|have|has|had)nt)$",
    re.IGNORECASE,
)
_ABOUT_ONESELF = re.compile(
    r"\b(?:hypothesis|guess|assumption|theory|idea|hunch|suspicion|i\s+was|we\s+were)\b",
    re.IGNORECASE,
)
_INTENT = re.compile(
    r"\b(?:let\s+me|let's|lets|i'll|i\s+will|we'll|we\s+will|need\s+to|going\s+to|want\s+to"
    r"|try\s+to|write|create|add|make|writing|creating|adding|making)\b|\w\s+(?:that|which)\s*$",
    re.IGNORECASE,
)
NEGATION_WORDS = 4
"""How many words before a phrase are searched for a negation ("nothing", "not", "isn't", ...)."""


def says_output_is_wrong(text: str) -> bool:
    """Whether reasoning ``text`` says the output just seen is wrong (the bug shows).

    True when a :data:`WRONG_OUTPUT` phrase occurs that is neither negated (no "not", "no",
    "nothing", "never", "without", "cannot" or "...n't" among the :data:`NEGATION_WORDS` words
    before it in its clause: "nothing wrong here", "I don't see anything unexpected") nor about
    the reasoning itself ("my hypothesis was wrong", "I was wrong") nor a plan ("let me write a
    script that reproduces it": "let me", "I'll", "need to", "going to", "write", "create",
    "add", "make", ... earlier in the clause, or "that" / "which" right before). Clauses end at a
    full stop (not a decimal point), ``; ! ? , :``, a line break, "but" and "however".
    Deliberately conservative: a miss costs a point of reproduction, a false hit would reward a
    session that never saw the bug.
    """
    text = text.replace("\u2019", "'")
    for m in WRONG_OUTPUT.finditer(text):
        clause = _CLAUSE.split(text[: m.start()])[-1]
        if _ABOUT_ONESELF.search(clause) or _INTENT.search(clause):
            continue
        words = [w.strip("()[]{}\"'`*_") for w in clause.split()[-NEGATION_WORDS:]]
        if any(_NEGATION.match(w) for w in words):
            continue
        return True
    return False


# Commands that only read or show files: their output is the code, not its behaviour, so calling
# it wrong is a diagnosis by reading, not a reproduction.
# fmt: off
_READ_ONLY = frozenset({
    "cat", "bat", "less", "more", "head", "tail", "grep", "egrep", "fgrep", "rg", "ag", "ack",
    "ls", "tree", "find", "fd", "sed", "awk", "wc", "nl", "file", "stat", "diff", "git", "echo",
    "printf", "pwd", "cd", "which", "type", "man", "open", "goto", "scroll_up", "scroll_down",
    "search_file", "search_dir", "find_file", "view", "vim", "vi", "nano", "emacs", "code",
})
# fmt: on
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
_SEGMENT = re.compile(r"&&|\|\||[;|\n]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = frozenset({"sudo", "env", "time", "nohup", "command", "exec"})


def _runs_code(command: str) -> bool:
    """Whether ``command`` runs something other than a file viewer in one of its parts."""
    for part in _SEGMENT.split(_QUOTED.sub("''", command)):
        words = part.split()
        while words and (words[0] in _PREFIXES or _ASSIGNMENT.match(words[0])):
            words = words[1:]
        if words and words[0].rsplit("/", 1)[-1] not in _READ_ONLY:
            return True
    return False


# -- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What the rules look at, read once from the trace."""

    events: list[Event]
    fix_start: int | None
    """The first edit to a non-test file (the first edit when every edit is to a test file)."""
    last_edit: int | None
    fix_edits: list[EditEvent]
    """The edits that make the fix: those to non-test files (all of them when every edit is to a
    test file)."""
    test_lines: int
    """Changed lines in test files left out of :attr:`fix_edits`."""
    validation: Validation | None
    """The test verdict; None when there is none (not tested, or could not be tested)."""
    test_verdict: TestVerdict
    could_not_test: str | None

    def before_fix(self) -> list[Event]:
        end = self.fix_start if self.fix_start is not None else len(self.events)
        return self.events[:end]

    @property
    def untested(self) -> str:
        """How the fix went untested, for reasons: "was not tested" / "could not be tested"."""
        return "could not be tested" if self.test_verdict == "could not test" else "was not tested"

    @classmethod
    def read(cls, trace: Trace, validation: Validation | None) -> _Facts:
        events = trace.events
        edits = [i for i, e in enumerate(events) if isinstance(e, EditEvent)]
        source = [i for i in edits if not is_test_file(_edit(events[i]).details.file)]
        fix = source or edits
        in_fix = set(fix)
        test_lines = sum(_changed_lines(_edit(events[i])) for i in edits if i not in in_fix)
        verdict: TestVerdict
        if validation is None:
            verdict = "not tested"
        elif validation.fix_validated is None:
            verdict = "could not test"
        else:
            verdict = "validated" if validation.fix_validated else "not validated"
        return cls(
            events=events,
            fix_start=fix[0] if fix else None,
            last_edit=edits[-1] if edits else None,
            fix_edits=[_edit(events[i]) for i in fix],
            test_lines=test_lines,
            # Could not test (fix_validated None): no verdict, so the rules see none.
            validation=validation if verdict in ("validated", "not validated") else None,
            test_verdict=verdict,
            could_not_test=(
                (validation.could_not_test or "no test verdict")
                if validation is not None and verdict == "could not test"
                else None
            ),
        )


def _edit(ev: Event) -> EditEvent:
    assert isinstance(ev, EditEvent)
    return ev


def _failed(ev: CommandEvent) -> bool:
    d = ev.details
    return (d.exit_code not in (None, 0)) or bool(_FAILURE.search(d.output or ""))


def _called_wrong(events: list[Event]) -> CommandEvent | None:
    """The first command in ``events`` that runs code and whose output the reasoning right after
    it (before the next command or edit) calls wrong."""
    for i, ev in enumerate(events):
        if not isinstance(ev, CommandEvent) or not _runs_code(ev.details.command):
            continue
        for nxt in events[i + 1 :]:
            if not isinstance(nxt, ReasoningEvent):
                break
            if says_output_is_wrong(nxt.details.text):
                return ev
    return None


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
        f = _Facts.read(trace, validation)
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
        if f.test_verdict == "validated":
            cap, verdict = 5, "the fix validated"
        elif f.test_verdict == "not validated":
            cap, verdict = 2, "the fix did not validate"
        elif f.test_verdict == "could not test":
            reason = " ".join((f.could_not_test or "").split())[:200]
            cap, verdict = 3, f"the fix could not be tested ({reason})"
        else:
            cap, verdict = 3, "the fix was not tested (no test verdict)"
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
            test_verdict=f.test_verdict,  # an extra field: Grade allows them
        )

    # -- the rules ------------------------------------------------------------------------------

    @staticmethod
    def _hypotheses(f: _Facts) -> RubricScore:
        early = [e for e in f.before_fix() if isinstance(e, ReasoningEvent)]
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
        early = f.before_fix()
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
        early = f.before_fix()
        test_edit = next((i for i, e in enumerate(early) if isinstance(e, EditEvent)), None)
        failing = [i for i, e in enumerate(early) if isinstance(e, CommandEvent) and _failed(e)]
        if test_edit is not None and any(i > test_edit for i in failing):
            return RubricScore(score=5, reason="wrote a test and saw it fail before the fix")
        if failing:
            return RubricScore(score=5, reason="reproduced the failure before the first edit")
        confirmed = _called_wrong(early)
        if confirmed is not None:
            command = " ".join(confirmed.details.command.split())
            command = command if len(command) <= 60 else command[:57] + "..."
            return RubricScore(
                score=5,
                reason=f"reproduced the bug before the fix: the output of `{command}` was "
                "called wrong",
            )
        if any(isinstance(e, CommandEvent) for e in early):
            return RubricScore(score=3, reason="ran commands first, but none showed the failure")
        if f.fix_start is None:
            return RubricScore(score=2, reason="no edit and no reproduction")
        if test_edit is not None:
            return RubricScore(score=1, reason="wrote a test but did not run it before the fix")
        return RubricScore(score=1, reason="edited without reproducing the bug first")

    @staticmethod
    def _minimality(f: _Facts) -> RubricScore:
        if not f.fix_edits:
            return RubricScore(score=1, reason="made no edit")
        lines = sum(_changed_lines(e) for e in f.fix_edits)
        files = len({e.details.file for e in f.fix_edits})
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
        if f.test_lines:
            reason += f" (and {f.test_lines} test lines, not counted)"
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
                RubricScore(score=3, reason=f"re-ran commands after the fix; it {f.untested}")
                if ran_after
                else RubricScore(
                    score=2, reason=f"did not re-run anything after the fix, and it {f.untested}"
                )
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
            return RubricScore(
                score=3, reason=f"final confidence {c:.2f}; the fix {f.untested}, outcome unknown"
            )
        if v.fix_validated:
            score = 5 if c >= 0.7 else 4 if c >= 0.4 else 3
            return RubricScore(score=score, reason=f"final confidence {c:.2f}; the fix validated")
        score = 1 if c >= 0.7 else 2 if c >= 0.4 else 4
        return RubricScore(
            score=score, reason=f"final confidence {c:.2f}; the fix did not validate"
        )
