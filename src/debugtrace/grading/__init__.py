"""The grader contract: score the debugging quality of a trace, 1-5, with reasons.

``debugtrace.testing.GraderContract`` runs the same behaviour tests against every grader.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from debugtrace.errors import GradeError

if TYPE_CHECKING:
    from debugtrace.model import Trace
    from debugtrace.results import Grade, Validation

__all__ = ["GradeError", "GradeOutput", "Grader", "RubricItem", "trace_fingerprint"]

RUBRIC = {
    "hypothesis_quality": "Were hypotheses stated before editing, specific and testable?",
    "evidence_gathering": "Were hypotheses tested by commands (reproductions, prints, greps)?",
    "reproduction": "Was the bug reproduced before the first edit to the code (tests aside)?",
    "fix_minimality": "Is the fix small and focused on the cause?",
    "verification": "Were the tests run again after the fix, and did the fix validate?",
    "calibration": "Did the stated confidence match the outcome?",
}
"""The named sub-scores every built-in grader fills in, with the question each answers."""


class RubricItem(BaseModel):
    """One sub-score as a model returns it (structured output)."""

    name: str = Field(description="One of the rubric names given in the instructions.")
    score: int = Field(ge=1, le=5)
    reason: str = Field(description="One line: why this score.")


class GradeOutput(BaseModel):
    """What an LLM grader is asked to return (the JSON schema of its structured output)."""

    score: int = Field(
        ge=1, le=5, description="Overall debugging quality, 1 (poor) to 5 (excellent)."
    )
    summary: str = Field(description="Two sentences on how the debugging went.")
    strengths: list[str] = Field(description="Short phrases.")
    weaknesses: list[str] = Field(description="Short phrases.")
    recommendations: list[str] = Field(description="Short, actionable phrases.")
    rubric: list[RubricItem]

    def to_grade(self, *, only: Collection[str] | None = None, **provenance: Any) -> Grade:
        """The stored :class:`~debugtrace.results.Grade`: this answer plus ``provenance``
        (grader, model, rubric_version, prompt_hash, usage, ...). ``only`` keeps just the rubric
        items with those names (default: all; a model's extra sub-score is information)."""
        from debugtrace.results import Grade, RubricScore

        return Grade(
            score=self.score,
            summary=self.summary,
            strengths=self.strengths,
            weaknesses=self.weaknesses,
            recommendations=self.recommendations,
            rubric={
                r.name: RubricScore(score=r.score, reason=r.reason)
                for r in self.rubric
                if only is None or r.name in only
            },
            **provenance,
        )


def trace_fingerprint(trace: Trace, validation: Validation | None, *parts: str) -> str:
    """A hash of what a grade depends on: the trace's content, the verdict, and ``parts``
    (model, rubric version, prompt hash). Equal fingerprints may reuse a cached grade."""
    doc = {
        "bug": trace.bug_description,
        "repo": trace.repo_url,
        "events": [
            {"type": e.type, "details": e.details.model_dump(mode="json")} for e in trace.events
        ],
        # Where the tests ran (interpreter, environment built or reused, timings) is not part
        # of the verdict: a second finalize in a reused environment keeps the grade.
        "validation": (
            validation.model_dump(mode="json", exclude={"environment"}) if validation else None
        ),
        "parts": parts,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Grader(ABC):
    """Scores one trace. Implementations must be safe to call from several threads."""

    name: str = ""
    version: str = "1"

    @abstractmethod
    def grade(self, trace: Trace, validation: Validation | None) -> Grade:
        """Grade ``trace`` knowing the test verdict (None when the tests did not run).

        Returns a :class:`~debugtrace.results.Grade` with ``grader`` set to this grader's name.
        Raises :class:`GradeError` with the reason when no valid grade can be produced.
        """

    def close(self) -> None:  # noqa: B027 - optional for graders without resources
        """Release connections or other resources. The default does nothing."""
