"""What finalize records on a trace: stage statuses, per-edit results, test validation, grades.

Each stage writes its piece as soon as it finishes, so a crash in a later stage keeps the earlier
ones. Floats are finite (NaN and Infinity are refused, as everywhere in the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "HISTORY_RUNS",
    "EditResult",
    "Grade",
    "RubricScore",
    "Stage",
    "TraceResult",
    "Validation",
    "verdict_run",
]

HISTORY_RUNS = 20
"""Earlier finalize runs kept on a trace (the oldest are dropped)."""

StageName = Literal["workspace", "apply", "tests", "grade"]
StageStatus = Literal["ok", "failed", "error", "skipped", "running"]


class Stage(BaseModel):
    """One stage of finalize: ok / failed (the work said no) / error (we crashed) / skipped."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    name: StageName
    status: StageStatus
    started_at: datetime | None = None
    duration_s: float | None = None
    message: str = ""
    """One line saying what happened and, on failure, what to do next."""
    log: str = ""
    """Bounded log (head and tail) of what the stage ran."""


class EditResult(BaseModel):
    """How one edit event fared when applied to the worktree."""

    model_config = ConfigDict(extra="allow")

    seq: int
    file: str
    status: Literal["applied", "failed", "refused"]
    method: str | None = None
    """git-apply, git-apply-3way or patch-fuzzy: the first that worked."""
    message: str = ""


class Validation(BaseModel):
    """Tests before vs after the edits, classified per test."""

    model_config = ConfigDict(extra="allow")

    base_sha: str | None = None
    test_command: list[str] = Field(default_factory=list)
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    pass_to_fail: list[str] = Field(default_factory=list)
    fail_to_fail: list[str] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    fix_validated: bool | None = None
    """True: at least one fail_to_pass, no pass_to_fail and every expected fail_to_pass test
    among them; False: the tests ran and said no; None: the fix could not be tested
    (:attr:`could_not_test` says why)."""
    could_not_test: str | None = None
    """Why the tests gave no verdict (collection or import errors, no test ran, a missing runner,
    an environment that could not be built); None when they did."""
    turned_green_by: dict[str, int] = Field(default_factory=dict)
    """With per-edit validation: the seq of the edit after which each fail_to_pass test passed."""
    environment: str = ""
    """What the tests ran in: the interpreter or runtime, the environment and whether it was
    built or reused (e.g. ``python 3.11.7 (/usr/bin/python3.11); env py-1a2b3c (reused)``)."""
    expected_fail_to_pass: list[str] = Field(default_factory=list)
    """Held-out tests the trace (or finalize) said must go from failing to passing."""
    missing_expected: list[str] = Field(default_factory=list)
    """Those of :attr:`expected_fail_to_pass` that are not in :attr:`fail_to_pass`."""
    test_patch: bool = False
    """Whether a held-out test patch was applied to both runs."""

    @property
    def verdict(self) -> str:
        """``validated``, ``not validated`` or ``could not test: <reason>`` (what people read)."""
        if self.fix_validated is None:
            return f"could not test: {self.could_not_test or 'no test verdict'}"
        return "validated" if self.fix_validated else "not validated"


class RubricScore(BaseModel):
    """One named sub-score of a grade."""

    score: int = Field(ge=1, le=5)
    reason: str = ""


class Grade(BaseModel):
    """A grader's verdict on the debugging quality of a trace (1-5) with provenance."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    score: int = Field(ge=1, le=5)
    summary: str = ""
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    rubric: dict[str, RubricScore] = Field(default_factory=dict)
    grader: str = ""
    grader_version: str = ""
    model: str | None = None
    rubric_version: str = ""
    prompt_hash: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    duration_s: float | None = None


class TraceResult(BaseModel):
    """Everything finalize found; empty until the trace is finalized."""

    model_config = ConfigDict(extra="allow")

    stages: list[Stage] = Field(default_factory=list)
    edits: list[EditResult] = Field(default_factory=list)
    validation: Validation | None = None
    grades: list[Grade] = Field(default_factory=list)
    finalized_at: datetime | None = None
    history: list[TraceResult] = Field(default_factory=list)
    """Earlier finalize runs of the trace, newest first (each without a history of its own), at
    most :data:`HISTORY_RUNS`. The result itself is the latest *complete* run (one whose tests
    gave a verdict); a later run that failed before the tests is kept here, never in its place."""

    @property
    def complete(self) -> bool:
        """Whether this run's tests gave a verdict (validated or not)."""
        return self.validation is not None and self.validation.fix_validated is not None

    @property
    def held_out(self) -> bool:
        """Whether this run checked the fix against held-out tests."""
        v = self.validation
        return v is not None and (v.test_patch or bool(v.expected_fail_to_pass))

    def with_run(self, run: TraceResult) -> TraceResult:
        """The trace's result once ``run`` (a new finalize run of it) is over: the newest
        complete run among ``run``, this one and its history — the newest complete run against
        held-out tests when there is one (a later run without them never replaces that verdict)
        — else ``run``; every other run in ``history``, newest first, bounded."""
        runs = [run.model_copy(update={"history": []})]
        if self.stages or self.validation is not None or self.grades:
            runs.append(self.model_copy(update={"history": []}))
        runs += [r.model_copy(update={"history": []}) for r in self.history]
        current = verdict_run(runs) or runs[0]
        rest = [r for r in runs if r is not current][:HISTORY_RUNS]
        return current.model_copy(update={"history": rest})

    def latest_grades(self) -> dict[str, Grade]:
        """The latest grade of each grader, by grader name (later grades replace earlier ones)."""
        return {g.grader: g for g in self.grades}

    def score(self, grader: str | None = None) -> int | None:
        """The trace's score: ``grader``'s latest score, or with no ``grader`` the lowest of every
        grader's latest score (each grader must rate it that high). None when nothing matches."""
        latest = self.latest_grades()
        if grader is not None:
            grade = latest.get(grader)
            return grade.score if grade is not None else None
        return min((g.score for g in latest.values()), default=None)


def verdict_run(runs: Sequence[TraceResult]) -> TraceResult | None:
    """Of ``runs`` (newest first), the one that stands as the trace's verdict: the newest
    complete run against held-out tests, else the newest complete run; None when none is
    complete."""
    complete = [r for r in runs if r.complete]
    return next(iter([r for r in complete if r.held_out] or complete), None)
