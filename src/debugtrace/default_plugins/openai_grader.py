"""Built-in grader ``openai``: an LLM (any OpenAI-compatible server) grades the trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.grading import Grader
    from debugtrace.registry import Register


def _openai(settings: Settings) -> Grader:
    from debugtrace.grading.openai import OpenAIGrader

    return OpenAIGrader(settings)


@hookimpl
def register_graders(register: Register) -> None:
    """Register ``openai``."""
    register(
        "openai",
        _openai,
        requires=("openai",),
        description="LLM grade through the openai SDK (DEBUGTRACE_MODEL; OPENAI_API_KEY, "
        "OPENAI_BASE_URL for any OpenAI-compatible server)",
        install_hint="pip install 'debugtrace-collector[openai]'",
    )
