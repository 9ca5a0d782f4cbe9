"""Size limits on untrusted input, checked once per request after the model has parsed it.

Limits are ingest policy (configurable per deployment), not model invariants: stored traces are
read back whatever the limits are today. One pass over the parsed objects checks every field, so
the cost is a few ``len()`` calls per event.

The same pass refuses NaN and Infinity in the free-form parts (``metadata``, extra keys in
``details``): JSON has no such numbers, and they would be stored as null. (Typed fields refuse them
in the model.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from debugtrace.config import Limits
from debugtrace.errors import ErrorDetail
from debugtrace.model import CommandDetails, EditDetails, Event, HeldOut, ReasoningDetails, Trace

__all__ = ["check_events", "check_held_out", "check_trace"]

Loc = tuple[str | int, ...]


def _size(value: str, limit: int) -> int:
    """UTF-8 size of ``value`` if it may exceed ``limit``, else 0 (no encoding needed)."""
    # A str of n code points is at most 4n bytes: encode only when the limit is in reach.
    if len(value) * 4 <= limit:
        return 0
    return len(value.encode("utf-8", "surrogatepass"))


def _field(loc: Loc, value: str | None, limit: int, setting: str) -> Iterable[ErrorDetail]:
    if value is not None and (size := _size(value, limit)) > limit:
        yield ErrorDetail(
            loc, f"{size} bytes is over the limit of {limit} bytes (DEBUGTRACE_{setting.upper()})"
        )


def check_events(
    events: Sequence[Event],
    limits: Limits,
    prefix: Loc = (),
    strings: list[str] | None = None,
    extras: list[int] | None = None,
) -> list[ErrorDetail]:
    """Every field of every event over its limit; empty when all fit.

    With ``strings``, also appends every string field to it, in the slot order of
    ``debugtrace.ingest.redact.redact_events``, and to ``extras`` the index of each event whose
    details have extra keys: the redactor then needs no second pass over the batch (the ingest hot
    path)."""
    gather = strings.extend if strings is not None else None
    errors: list[ErrorDetail] = []
    # Code-point counts against the limits / 4 (a code point is at most 4 bytes).
    short, out, diff, text = (
        limits.max_field_bytes // 4,
        limits.max_output_bytes // 4,
        limits.max_diff_bytes // 4,
        limits.max_text_bytes // 4,
    )
    # Fast path: one cheap length test per event on the code-point counts (a code point is at most
    # 4 bytes); only an event that might be over a limit gets the field-by-field check below.
    for i, ev in enumerate(events):
        d = ev.details
        if isinstance(d, CommandDetails):
            suspect = (
                len(d.output) > out
                or len(d.command) > short
                or (d.cwd is not None and len(d.cwd) > short)
            )
            if gather:
                gather((d.command, d.output, d.cwd or ""))
        elif isinstance(d, EditDetails):
            suspect = len(d.diff) > diff or len(d.file) > short
            if gather:
                gather((d.file, d.diff))
        else:
            assert isinstance(d, ReasoningDetails)
            suspect = len(d.text) > text or (
                d.reasoning_type is not None and len(d.reasoning_type) > short
            )
            if gather:
                gather((d.text, d.reasoning_type or ""))
        if suspect:
            errors += _check_details((*prefix, i, "details"), d, limits)
        extra = d.__pydantic_extra__
        if extra:
            if extras is not None:
                extras.append(i)
            size = _json_size((*prefix, i, "details"), extra, errors)
            if size > limits.max_details_bytes:
                errors.append(
                    ErrorDetail(
                        (*prefix, i, "details"),
                        f"extra keys in details take {size} bytes, over the limit of "
                        f"{limits.max_details_bytes} bytes (DEBUGTRACE_MAX_DETAILS_BYTES)",
                    )
                )
    return errors


def _json_size(loc: Loc, value: dict[str, Any], errors: list[ErrorDetail]) -> int:
    """UTF-8 size of ``value`` as JSON; a NaN or Infinity in it is added to ``errors`` (size 0)."""
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str, allow_nan=False).encode())
    except ValueError:  # json.dumps says only "Out of range float values": find where
        found = [
            ErrorDetail(
                where,
                f"{json.dumps(number)}: NaN and Infinity are not JSON numbers; "
                "send a finite number or null",
            )
            for where, number in _non_finite(value, loc, set())
        ]
        if not found:  # e.g. a circular reference in a dict built in Python
            raise
        errors.extend(found)
        return 0


def _non_finite(value: Any, loc: Loc, seen: set[int]) -> Iterator[tuple[Loc, float]]:
    """Where in ``value`` a float is NaN or infinite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield loc, value
    elif isinstance(value, dict | list | tuple) and id(value) not in seen:
        seen.add(id(value))  # a container met again is a cycle (or shared): looked at once
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, v in items:
            yield from _non_finite(v, (*loc, key if isinstance(key, int) else str(key)), seen)


def _check_details(loc: Loc, d: object, limits: Limits) -> list[ErrorDetail]:
    fields: list[tuple[str, str | None, int, str]]
    short = limits.max_field_bytes
    if isinstance(d, CommandDetails):
        fields = [
            ("command", d.command, short, "max_field_bytes"),
            ("output", d.output, limits.max_output_bytes, "max_output_bytes"),
            ("cwd", d.cwd, short, "max_field_bytes"),
        ]
    elif isinstance(d, EditDetails):
        fields = [
            ("file", d.file, short, "max_field_bytes"),
            ("diff", d.diff, limits.max_diff_bytes, "max_diff_bytes"),
        ]
    else:
        assert isinstance(d, ReasoningDetails)
        fields = [
            ("text", d.text, limits.max_text_bytes, "max_text_bytes"),
            ("reasoning_type", d.reasoning_type, short, "max_field_bytes"),
        ]
    return [
        err
        for name, value, limit, setting in fields
        for err in _field((*loc, name), value, limit, setting)
    ]


def check_trace(trace: Trace, limits: Limits) -> list[ErrorDetail]:
    """Every trace-level field and event over its limit; empty when all fit."""
    short = limits.max_field_bytes
    errors: list[ErrorDetail] = []
    for name in ("id", "developer_id", "repo_url", "base_commit", "branch"):
        errors += _field((name,), getattr(trace, name), short, "max_field_bytes")
    errors += _field(
        ("bug_description",), trace.bug_description, limits.max_text_bytes, "max_text_bytes"
    )
    if trace.metadata:
        size = _json_size(("metadata",), trace.metadata, errors)
        if size > limits.max_details_bytes:
            errors.append(
                ErrorDetail(
                    ("metadata",),
                    f"{size} bytes is over the limit of {limits.max_details_bytes} bytes "
                    "(DEBUGTRACE_MAX_DETAILS_BYTES)",
                )
            )
    if trace.held_out is not None:
        errors += check_held_out(trace.held_out, limits, ("held_out",))
    return errors + check_events(trace.events, limits, ("events",))


def check_held_out(held: HeldOut, limits: Limits, loc: Loc) -> list[ErrorDetail]:
    """Held-out tests over their limits: the test patch is a diff like an edit's, each expected
    test id a short field."""
    errors = list(
        _field((*loc, "test_patch"), held.test_patch, limits.max_diff_bytes, "max_diff_bytes")
    )
    for i, test_id in enumerate(held.fail_to_pass):
        errors += _field(
            (*loc, "fail_to_pass", i), test_id, limits.max_field_bytes, "max_field_bytes"
        )
    return errors
