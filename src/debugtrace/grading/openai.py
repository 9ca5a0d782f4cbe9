"""The ``openai`` grader: an LLM scores the trace through the official ``openai`` SDK.

Any OpenAI-compatible server works: the SDK reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` from
the environment, so ``OPENAI_BASE_URL=http://127.0.0.1:8000/v1`` points it at vLLM, llama.cpp's
``llama-server`` or Ollama (``DEBUGTRACE_MODEL`` names the served model). The server must support
structured output (``response_format={"type": "json_schema", ...}``). Azure OpenAI works through
its OpenAI-compatible ``/openai/v1/`` endpoint: set ``OPENAI_BASE_URL`` to it and
``OPENAI_API_KEY`` to the Azure key.

The answer is parsed into :class:`~debugtrace.grading.GradeOutput` by ``chat.completions.parse``;
everything that prevents a valid grade (no key, auth, rate limits or server errors after the
retries, timeouts, a refusal, invalid JSON, scores out of range, a cut-off answer) is raised as a
:class:`~debugtrace.grading.GradeError` with a one-line reason. Grades are cached on disk
(``DEBUGTRACE_GRADE_CACHE``) by a fingerprint of the trace, the verdict, the model and the prompt.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from debugtrace.errors import GradeError
from debugtrace.grading import GradeOutput, Grader
from debugtrace.grading.cache import GradeCache, grade_cache_key
from debugtrace.grading.prompt import PROMPT_VERSION, build_prompt
from debugtrace.results import Grade

if TYPE_CHECKING:
    from openai import OpenAI

    from debugtrace.config import Settings
    from debugtrace.model import Trace
    from debugtrace.results import Validation

__all__ = ["OpenAIGrader"]

RUBRIC_VERSION = "rubric-1"
_REASON_CHARS = 300


class OpenAIGrader(Grader):
    """Grades with a chat model through the ``openai`` SDK (structured output, temperature 0)."""

    name = "openai"
    version = "1"
    rubric_version = RUBRIC_VERSION

    def __init__(self, settings: Settings, client: OpenAI | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._cache = GradeCache.for_settings(settings) if settings.grade_cache else None

    @property
    def client(self) -> OpenAI:
        """The SDK client, built on first use from the environment and the settings.

        Raises :class:`GradeError` when the SDK is missing or no API key is configured.
        """
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
                # Close its connection pool when the grader goes away, even without close().
                weakref.finalize(self, self._client.close)
            return self._client

    def close(self) -> None:
        """Close the SDK client's connections (it is rebuilt if the grader is used again)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _make_client(self) -> OpenAI:
        try:
            import openai
        except ImportError:
            raise GradeError(
                "the openai grader needs the openai SDK: pip install 'debugtrace-collector[openai]'"
            ) from None
        try:
            return openai.OpenAI(
                max_retries=self.settings.grade_retries, timeout=self.settings.grade_timeout_s
            )
        except openai.OpenAIError as exc:
            raise GradeError(
                "no OpenAI API key: set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
                f"OpenAI-compatible server), or use the heuristic grader ({_one_line(exc)})"
            ) from None

    def grade(self, trace: Trace, validation: Validation | None) -> Grade:
        """Grade ``trace`` with the configured model; see the module docstring for the errors."""
        prompt = build_prompt(trace, validation, self.settings.grade_token_budget)
        client = self.client
        model = self.settings.model
        key = grade_cache_key(
            trace,
            validation,
            grader=self.name,
            model=model,
            rubric_version=self.rubric_version,
            prompt_hash=prompt.hash,
            extra=(self.version, PROMPT_VERSION, str(client.base_url)),
        )
        if self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached.model_copy(update={"cached": True})
        started = time.monotonic()
        try:
            completion = client.chat.completions.parse(
                model=model,
                messages=prompt.messages,  # type: ignore[arg-type]
                response_format=GradeOutput,
                temperature=0,
            )
        except Exception as exc:
            raise GradeError(self._reason(exc)) from exc
        duration = time.monotonic() - started
        if not completion.choices:
            raise GradeError(f"{model} returned no choices")
        message = completion.choices[0].message
        if message.refusal:
            raise GradeError(f"{model} refused to grade: {_one_line(message.refusal)}")
        out = message.parsed
        if out is None:
            raise GradeError(f"{model} returned an empty answer (no content to parse)")
        usage: dict[str, int] = {}
        if completion.usage is not None:
            usage = {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "total_tokens": completion.usage.total_tokens,
            }
        grade = out.to_grade(
            grader=self.name,
            grader_version=self.version,
            model=completion.model or model,
            rubric_version=self.rubric_version,
            prompt_hash=prompt.hash,
            usage=usage,
            duration_s=round(duration, 3),
            cut_events=prompt.cut_events,
            estimated_prompt_tokens=prompt.estimated_tokens,
        )
        if self._cache is not None:
            with contextlib.suppress(OSError):  # a read-only or full disk only costs a re-grade
                self._cache.put(key, grade)
        return grade

    def _reason(self, exc: Exception) -> str:
        """One line saying why the request produced no grade."""
        import openai
        from pydantic import ValidationError

        model = self.settings.model
        retries = self.settings.grade_retries
        tries = f"after {retries} retr{'y' if retries == 1 else 'ies'}"
        if isinstance(exc, openai.LengthFinishReasonError):
            return f"{model}'s answer was cut off at its length limit (finish_reason=length)"
        if isinstance(exc, openai.ContentFilterFinishReasonError):
            return f"{model}'s answer was blocked by the content filter"
        if isinstance(exc, ValidationError):
            return f"{model} did not return a valid grade: {_validation_reason(exc)}"
        if isinstance(exc, openai.AuthenticationError):
            return f"the API key was rejected (HTTP {exc.status_code}): check OPENAI_API_KEY"
        if isinstance(exc, openai.PermissionDeniedError):
            return f"permission denied (HTTP {exc.status_code}): {_api_message(exc)}"
        if isinstance(exc, openai.NotFoundError):
            return (
                f"not found (HTTP 404) at {self.client.base_url}: is the model {model!r} served "
                f"there? {_api_message(exc)}"
            )
        if isinstance(exc, openai.RateLimitError):
            return f"rate limited (HTTP 429) {tries}: {_api_message(exc)}"
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return f"server error (HTTP {exc.status_code}) {tries}: {_api_message(exc)}"
            return f"request rejected (HTTP {exc.status_code}): {_api_message(exc)}"
        if isinstance(exc, openai.APITimeoutError):
            return f"no answer within {self.settings.grade_timeout_s:g}s {tries} (timeout)"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return f"cannot reach {self.client.base_url} {tries}: {_one_line(cause)}"
        if isinstance(exc, openai.OpenAIError):
            return f"openai: {_one_line(exc)}"
        return f"unexpected {type(exc).__name__} while grading: {_one_line(exc)}"


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def _api_message(exc: Any) -> str:
    """The server's own error message when its body has one, else the SDK's."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return _one_line(inner["message"])
    return _one_line(getattr(exc, "message", exc))


def _validation_reason(exc: Any) -> str:
    errors: list[dict[str, Any]] = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "the answer is not valid JSON"
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "(answer)"
        shown = e.get("input")
        got = f" (got {shown!r})" if isinstance(shown, int | float | str | bool) else ""
        parts.append(f"{where}: {e.get('msg', '')}{got}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return _one_line("; ".join(parts) + more)
