"""The ``llm`` grader: debugtrace's shared grading prompt, answered by any ``llm`` model.

Models that support structured output (``supports_schema``) get :class:`GradeOutput` as the
schema; others are asked for the JSON in the prompt and their answer is parsed (a code fence or
text around the object is tolerated). Either way the answer is validated against
:class:`GradeOutput`, and anything that goes wrong becomes a one-line :class:`GradeError`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from debugtrace.errors import GradeError
from debugtrace.grading import RUBRIC, GradeOutput, Grader
from debugtrace.grading.prompt import PROMPT_VERSION, build_prompt
from debugtrace.results import Grade
from pydantic import ValidationError

if TYPE_CHECKING:
    import llm
    from debugtrace.config import Settings
    from debugtrace.grading.cache import GradeCache
    from debugtrace.model import Trace
    from debugtrace.results import Validation

__all__ = ["MODEL_ENV", "RUBRIC_VERSION", "LLMGrader", "parse_output"]

__version__ = "0.1.0"

MODEL_ENV = "DEBUGTRACE_LLM_MODEL"
"""Environment variable naming the llm model id or alias; unset = llm's default model."""

RUBRIC_VERSION = "rubric-1"
"""The version of ``debugtrace.grading.RUBRIC`` this grader asks for (as the openai grader)."""

REASON_CHARS = 300
"""Longest reason a GradeError carries (it is recorded on the trace as one line)."""

JSON_INSTRUCTIONS = (
    "\n\nAnswer with one JSON object and nothing else (no prose, no code fence). "
    "It must match this JSON schema:\n" + json.dumps(GradeOutput.model_json_schema())
)
"""Appended to the prompt for models without structured output."""


class LLMGrader(Grader):
    """Grades a trace with an ``llm`` model (``DEBUGTRACE_LLM_MODEL``, else llm's default).

    Stateless between calls (each grade is a fresh prompt and response), so it is safe to use
    from several threads.
    """

    name = "llm"
    version = __version__

    def __init__(self, settings: Settings, model_id: str | None = None) -> None:
        self.settings = settings
        # The requested model id or alias; None = whatever `llm models default` says.
        self.model_id = model_id or os.environ.get(MODEL_ENV) or None
        self._cache = _grade_cache(settings) if settings.grade_cache else None

    def model(self) -> llm.Model:
        """The llm model to ask; :class:`GradeError` when llm does not know it."""
        import llm

        try:
            return llm.get_model(self.model_id)
        except llm.UnknownModelError as exc:
            wanted = self.model_id or str(llm.get_default_model())  # type: ignore[no-untyped-call]
            raise GradeError(
                f"unknown llm model {wanted!r} ({_one_line(exc.args[0] if exc.args else exc)}): "
                f"set {MODEL_ENV} to an id `llm models` lists, or install the llm plugin "
                "that provides it"
            ) from exc
        except Exception as exc:
            raise GradeError(f"cannot load llm models: {_one_line(exc)}") from exc

    def grade(self, trace: Trace, validation: Validation | None) -> Grade:
        """Ask the model for a grade; :class:`GradeError` with a one-line reason on failure."""
        started = time.monotonic()
        model = self.model()
        prompt = build_prompt(trace, validation, self.settings.grade_token_budget)
        structured = bool(getattr(model, "supports_schema", False))
        if not structured:
            prompt = replace(prompt, user=prompt.user + JSON_INSTRUCTIONS)
        key = self._cache_key(trace, validation, model.model_id, prompt.hash)
        if key is not None and self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached.model_copy(update={"cached": True})
        try:
            response = model.prompt(
                prompt.user,
                system=prompt.system,
                schema=GradeOutput if structured else None,
                stream=False,
            )
            text = response.text()
        except Exception as exc:
            raise GradeError(
                f"llm model {model.model_id!r} failed: {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        output = parse_output(text, model.model_id)
        grade = output.to_grade(
            only=RUBRIC,
            grader=self.name,
            grader_version=self.version,
            model=response.resolved_model or model.model_id,
            rubric_version=RUBRIC_VERSION,
            prompt_hash=prompt.hash,
            usage=_usage(response),
            duration_s=round(time.monotonic() - started, 3),
        )
        if key is not None and self._cache is not None:
            self._cache.put(key, grade)
        return grade

    def _cache_key(
        self, trace: Trace, validation: Validation | None, model_id: str, prompt_hash: str
    ) -> str | None:
        """The grade cache key (None when this debugtrace has no grade cache)."""
        try:
            from debugtrace.grading.cache import grade_cache_key
        except ImportError:
            return None
        return grade_cache_key(
            trace,
            validation,
            grader=self.name,
            model=model_id,
            rubric_version=RUBRIC_VERSION,
            prompt_hash=prompt_hash,
            extra=(self.version, PROMPT_VERSION),
        )


def parse_output(text: str, model_id: str = "?") -> GradeOutput:
    """Validate a model's answer as :class:`GradeOutput` (text around the JSON object is cut)."""
    start, end = text.find("{"), text.rfind("}")
    body = text[start : end + 1] if 0 <= start < end else text
    try:
        return GradeOutput.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:3]
        )
        raise GradeError(
            f"llm model {model_id!r} returned an invalid grade: {_one_line(problems)}"
        ) from exc


def _grade_cache(settings: Settings) -> GradeCache | None:
    """debugtrace's grade cache in the data directory (None in versions without one)."""
    try:
        from debugtrace.grading.cache import GradeCache
    except ImportError:
        return None
    return GradeCache.for_settings(settings)


def _usage(response: llm.Response) -> dict[str, int]:
    """Token counts when the model reports them, named as the openai grader names them."""
    try:
        usage = response.usage()
    except Exception:
        return {}
    counts: dict[str, int] = {}
    if usage.input is not None:
        counts["prompt_tokens"] = usage.input
    if usage.output is not None:
        counts["completion_tokens"] = usage.output
    if usage.input is not None and usage.output is not None:
        counts["total_tokens"] = usage.input + usage.output
    return counts


def _one_line(value: object) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."
