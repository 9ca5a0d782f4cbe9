"""debugtrace-llm: grade debugging sessions with any model the ``llm`` library supports.

Installing this distribution registers the grader ``llm`` through the ``debugtrace`` entry-point
group. Select it with ``DEBUGTRACE_GRADER=llm`` and pick the model with ``DEBUGTRACE_LLM_MODEL``
(any model id or alias ``llm models`` lists; unset = llm's default model). The ``llm`` library is
imported only when a trace is graded, so loading the plugin costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl  # the same marker as `debugtrace.hookimpl`

from .grader import MODEL_ENV, LLMGrader

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.registry import Register

__all__ = ["MODEL_ENV", "LLMGrader", "register_graders"]


def _factory(settings: Settings) -> LLMGrader:
    return LLMGrader(settings)


@hookimpl
def register_graders(register: Register) -> None:
    """Register the ``llm`` grader (needs the ``llm`` library)."""
    register(
        "llm",
        _factory,
        requires=("llm",),
        description=f"any model the llm library supports (${MODEL_ENV}; default: llm's default)",
        install_hint="pip install debugtrace-llm",
    )
