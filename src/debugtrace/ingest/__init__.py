"""Untrusted input in: parse, bound and redact, before anything is stored.

:func:`parse_trace` and :func:`parse_events` turn dicts or JSON text into validated model objects,
with errors that name the field (:class:`~debugtrace.errors.InvalidTrace`). Every front end goes
through them (via the Collector). :mod:`.limits` bounds sizes and counts; :mod:`.redact` replaces
secrets with typed placeholders (``[REDACTED:kind]``), so nothing unredacted reaches storage, logs
or a grader.

JSON text is read strictly: a key repeated in one object is refused, naming the key and where it is
(parsers disagree on which copy wins, so a proxy and debugtrace could read different documents), and
so are NaN and Infinity, which JSON does not have (by the model in typed fields, by :mod:`.limits`
in ``metadata`` and extra detail keys).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from debugtrace.config import Limits
from debugtrace.errors import ErrorDetail, InvalidTrace
from debugtrace.ingest.limits import check_events, check_held_out, check_trace
from debugtrace.ingest.redact import Redactor, redact_events, redact_trace
from debugtrace.model import (
    EVENT_LIST,
    CommandEvent,
    EditEvent,
    Event,
    HeldOut,
    ReasoningEvent,
    Trace,
    repo_url_problem,
)

EVENT_CLASSES = (ReasoningEvent, CommandEvent, EditEvent)

__all__ = ["parse_events", "parse_finalize_request", "parse_trace"]

_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def _json_message(exc: ValidationError) -> str:
    # pydantic's message says where the JSON broke ("EOF while parsing a value at line 3 ...").
    return str(exc.errors()[0]["msg"]).removeprefix("Invalid JSON: ")


def _load(data: str | bytes, prefix: tuple[str | int, ...] = ()) -> Any:
    try:
        doc = _ANY_JSON.validate_json(data)
    except ValidationError as exc:
        raise InvalidTrace(f"malformed JSON: {_json_message(exc)}") from None
    if _key_ends(data) != _keys_in(doc):
        _refuse_repeated_keys(data, prefix)
    return doc


# -- repeated keys --------------------------------------------------------------------------------
#
# pydantic-core's parser keeps the last copy of a repeated key and cannot report one, and the
# stdlib parser that can (object_pairs_hook) roughly doubles the cost of parsing a batch. So the
# parse stays pydantic-core's, and a cheap count decides whether the exact check is needed at all:
#
#   key ends = occurrences of `"` + optional JSON whitespace + `:` in the text.
#
# In valid JSON every key written ends exactly so (one match each: a match holds one quote, its
# first character). Otherwise only a string's own text can match: an escaped quote before a colon
# (`"a\": b"`) or an opening quote before one (`": b"`). So key ends >= keys written >= distinct
# keys per object, summed; when key ends == the distinct keys of the parsed document, no key was
# written twice. Anything else (a repeat, or such a string) takes the exact check.

_KEY_END = re.compile(r'"[ \t\n\r]*:')
_KEY_END_BYTES = re.compile(rb'"[ \t\n\r]*:')


def _key_ends(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return len(_KEY_END_BYTES.findall(text))
    return len(_KEY_END.findall(text))


def _keys_in(value: Any) -> int:
    """The keys of every object in a parsed JSON value (each object's keys are distinct)."""
    if isinstance(value, dict):
        return len(value) + sum(_keys_in(v) for v in value.values() if isinstance(v, dict | list))
    if isinstance(value, list):
        return sum(_keys_in(v) for v in value if isinstance(v, dict | list))
    return 0


def _event_keys(events: list[Event]) -> int:
    """The keys of every object the events were parsed from: the fields set on each event and its
    details (extra keys included), and the objects nested in extra keys."""
    n = 0
    for ev in events:
        d = ev.details
        n += len(ev.__pydantic_fields_set__) + len(d.__pydantic_fields_set__)
        extra = d.__pydantic_extra__
        if extra:
            n += sum(_keys_in(v) for v in extra.values() if isinstance(v, dict | list))
    return n


class _Repeated(dict[str, Any]):
    """An object in which the keys in ``repeated`` were written more than once."""

    repeated: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    repeated = _Repeated(obj)
    seen: set[str] = set()
    repeated.repeated = []
    for key, _ in pairs:
        if key in seen and key not in repeated.repeated:
            repeated.repeated.append(key)
        seen.add(key)
    return repeated


def _repeats(value: Any, loc: tuple[str | int, ...]) -> Iterator[ErrorDetail]:
    if isinstance(value, dict):
        if isinstance(value, _Repeated):
            for key in value.repeated:
                yield ErrorDetail(
                    (*loc, key),
                    f"key {key!r} appears more than once in this object (JSON parsers disagree "
                    "on which copy counts; send it once)",
                )
        for key, v in value.items():
            yield from _repeats(v, (*loc, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _repeats(v, (*loc, i))


def _refuse_repeated_keys(data: str | bytes, prefix: tuple[str | int, ...]) -> None:
    """Raise InvalidTrace naming every key written twice in one object of ``data`` (JSON text that
    pydantic-core parsed); return when there is none."""
    try:
        doc = json.loads(data, object_pairs_hook=_pairs)
    except (ValueError, RecursionError) as exc:  # not expected after pydantic-core read it
        raise InvalidTrace(f"malformed JSON: {exc}") from None
    errors = list(_repeats(doc, prefix if isinstance(doc, list) else ()))
    if errors:
        raise InvalidTrace(errors)


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


class _FinalizeRequest(BaseModel):
    """The body of a finalize request: held-out tests overriding the trace's own."""

    model_config = ConfigDict(extra="forbid")

    test_patch: str | None = None
    fail_to_pass: list[Any] | None = None


def parse_finalize_request(
    data: Mapping[str, Any] | str | bytes,
    limits: Limits | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Validate the body of a finalize request (``{"test_patch": "...", "fail_to_pass": [...]}``,
    both optional); returns the :class:`~debugtrace.finalize.FinalizeOptions` fields it gives,
    as JSON values (a job stores them), checked and bounded as a trace's ``held_out`` is (the
    patch like an edit's diff) and redacted. Raises :class:`InvalidTrace` naming the field."""
    limits = limits or Limits()
    if isinstance(data, str | bytes):
        data = _load(data)
    if not isinstance(data, Mapping):
        raise InvalidTrace(f"a finalize request must be a JSON object, not {type(data).__name__}")
    try:
        given = _FinalizeRequest.model_validate(data)
        held = HeldOut(test_patch=given.test_patch or "", fail_to_pass=given.fail_to_pass or [])
    except ValidationError as exc:
        raise InvalidTrace.from_pydantic(exc.errors()) from None
    errors = check_held_out(held, limits, ())
    if errors:
        raise InvalidTrace(errors)
    if redactor is not None:
        found: Counter[str] = Counter()
        held = HeldOut(
            test_patch=redactor.redact_value(held.test_patch, found),
            fail_to_pass=redactor.redact_value(held.fail_to_pass, found),
        )
    out: dict[str, Any] = {}
    if given.test_patch is not None:
        out["test_patch"] = held.test_patch
    if given.fail_to_pass is not None:
        out["fail_to_pass"] = list(held.fail_to_pass)
    return out


def _checked_trace(trace: Trace, limits: Limits, redactor: Redactor | None) -> Trace:
    errors = check_trace(trace, limits)
    if errors:
        raise InvalidTrace(errors)
    if redactor is not None:
        url = trace.repo_url
        redact_trace(redactor, trace)
        # A placeholder where the URL's host was (a token as a host name) leaves a URL the model
        # refuses: stored, it could not be read back (nor exported), so it is refused here.
        if trace.repo_url != url and (problem := repo_url_problem(trace.repo_url)):
            raise InvalidTrace(
                [
                    ErrorDetail(
                        ("repo_url",), f"a secret in it was redacted, and then it is {problem}"
                    )
                ]
            )
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
        if _key_ends(data) != _event_keys(events):
            _refuse_repeated_keys(data, ("events",))
        return _checked(events, limits, ("events",), redactor)
    if isinstance(data, str | bytes):
        data = _load(data, ("events",))
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
