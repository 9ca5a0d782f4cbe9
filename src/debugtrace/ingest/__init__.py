"""Untrusted input in: parse, bound and redact, before anything is stored.

:func:`parse_trace` and :func:`parse_events` turn dicts or JSON text into validated model objects,
with errors that name the field (:class:`~debugtrace.errors.InvalidTrace`). Every front end goes
through them (via the Collector). :mod:`.limits` bounds sizes and counts; :mod:`.redact` replaces
secrets with typed placeholders (``[REDACTED:kind]``), so nothing unredacted reaches storage, logs or
a grader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from debugtrace.config import Limits
from debugtrace.errors import ErrorDetail, InvalidTrace
from debugtrace.ingest.limits import check_events, check_trace
from debugtrace.ingest.redact import Redactor, redact_events, redact_trace
from debugtrace.model import EVENT_LIST, CommandEvent, EditEvent, Event, ReasoningEvent, Trace

EVENT_CLASSES = (ReasoningEvent, CommandEvent, EditEvent)

__all__ = ["parse_events", "parse_trace"]

_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def _json_message(exc: ValidationError) -> str:
    # pydantic's message says where the JSON broke ("EOF while parsing a value at line 3 ...").
    return str(exc.errors()[0]["msg"]).removeprefix("Invalid JSON: ")


def _load(data: str | bytes) -> Any:
    try:
        return _ANY_JSON.validate_json(data)
    except ValidationError as exc:
        raise InvalidTrace(f"malformed JSON: {_json_message(exc)}") from None


def parse_trace(
    data: Trace | Mapping[str, Any] | str | bytes,
    limits: Limits | None = None,
    redactor: Redactor | None = None,
) -> Trace:
    """Validate a trace document (a dict, JSON text, or a Trace); returns the model, with its
    secrets replaced when a ``redactor`` is given.

    Raises :class:`InvalidTrace` naming every wrong field (``events.2.details.output: ...``).
    """
    limits = limits or Limits()
    if isinstance(data, Trace):
        # Already a valid model: check it against these limits and hand over a copy (storage
        # numbers the events in place, and the caller's objects must not change).
        trace = data.model_copy(deep=True)
        return _checked_trace(trace, limits, redactor)
    if isinstance(data, str | bytes):
        data = _load(data)
    if not isinstance(data, Mapping):
        raise InvalidTrace(f"a trace must be a JSON object, not {type(data).__name__}")
    _check_count(data.get("events"), limits, ("events",))
    try:
        trace = Trace.model_validate(data)
    except ValidationError as exc:
        raise InvalidTrace.from_pydantic(exc.errors()) from None
    return _checked_trace(trace, limits, redactor)


def _checked_trace(trace: Trace, limits: Limits, redactor: Redactor | None) -> Trace:
    errors = check_trace(trace, limits)
    if errors:
        raise InvalidTrace(errors)
    if redactor is not None:
        redact_trace(redactor, trace)
    return trace


def parse_events(
    data: Sequence[Event | Mapping[str, Any]] | Mapping[str, Any] | str | bytes,
    limits: Limits | None = None,
    redactor: Redactor | None = None,
) -> list[Event]:
    """Validate a batch of events: a list, or ``{"events": [...]}``, as objects or JSON text.

    Returns the events in order, with their secrets replaced when a ``redactor`` is given.
    Raises :class:`InvalidTrace` naming every wrong field.
    """
    limits = limits or Limits()
    if isinstance(data, str | bytes) and data.lstrip()[:1] in ("[", b"["):
        # A JSON list: parse and validate in one pass of pydantic-core (the ingest hot path).
        try:
            events = EVENT_LIST.validate_json(data)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                raise InvalidTrace(f"malformed JSON: {_json_message(exc)}") from None
            raise InvalidTrace.from_pydantic(exc.errors(), ("events",)) from None
        return _checked(events, limits, ("events",), redactor)
    if isinstance(data, str | bytes):
        data = _load(data)
    # Errors name "events.N..." whether the batch came as a bare list or as {"events": [...]}.
    prefix: tuple[str | int, ...] = ("events",)
    if isinstance(data, Mapping):
        if set(data) != {"events"}:
            raise InvalidTrace('expected a list of events or {"events": [...]}')
        data = data["events"]
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise InvalidTrace(
            [ErrorDetail(prefix, f"expected a list of events, not {type(data).__name__}")]
        )
    _check_count(data, limits, prefix)
    if data and all(isinstance(e, EVENT_CLASSES) for e in data):
        # Already valid models: deep copies, so neither storage (numbering) nor redaction
        # touches the caller's objects; only the limits remain to be checked.
        events = [e.model_copy(deep=True) for e in data]  # type: ignore[union-attr]
    else:
        # Dicts go to pydantic-core as they are; models mixed in are dumped first.
        plain = (
            [e.model_dump() if isinstance(e, BaseModel) else e for e in data]
            if any(isinstance(e, BaseModel) for e in data)
            else data
        )
        try:
            events = EVENT_LIST.validate_python(plain)
        except ValidationError as exc:
            raise InvalidTrace.from_pydantic(exc.errors(), prefix) from None
    return _checked(events, limits, prefix, redactor)


def _checked(
    events: list[Event],
    limits: Limits,
    prefix: tuple[str | int, ...],
    redactor: Redactor | None,
) -> list[Event]:
    _check_count(events, limits, prefix)
    # The limits pass also gathers the strings the redactor scans: one pass over the batch.
    texts: list[str] | None = [] if redactor is not None else None
    extras: list[int] | None = [] if redactor is not None else None
    errors = check_events(events, limits, prefix, texts, extras)
    if errors:
        raise InvalidTrace(errors)
    if redactor is not None:
        redact_events(redactor, events, texts, extras)
    return events


def _check_count(events: Any, limits: Limits, loc: tuple[str | int, ...]) -> None:
    if isinstance(events, Sequence) and len(events) > limits.max_events_per_request:
        raise InvalidTrace.from_pydantic(
            [
                {
                    "loc": loc,
                    "msg": f"{len(events)} events in one request; the limit is "
                    f"{limits.max_events_per_request} (DEBUGTRACE_MAX_EVENTS_PER_REQUEST)",
                }
            ]
        )
