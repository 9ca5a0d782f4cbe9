"""Built-in grader ``heuristic``: a deterministic rubric, the default when no API key is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.grading import Grader
    from debugtrace.registry import Register


def _heuristic(settings: Settings) -> Grader:
    from debugtrace.grading.heuristic import HeuristicGrader

    return HeuristicGrader()


@hookimpl
def register_graders(register: Register) -> None:
    """Register ``heuristic``."""
    register(
        "heuristic",
        _heuristic,
        description="deterministic rubric over the trace and its test verdict (offline)",
    )
