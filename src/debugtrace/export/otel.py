"""A trace as OpenTelemetry spans (GenAI semantic conventions), in OTLP/JSON, one request a line.

Each line is one ``ExportTraceServiceRequest`` (the body of ``POST /v1/traces``) holding one trace:

- an ``invoke_agent {developer}`` span (kind INTERNAL) covering the session:
  ``gen_ai.operation.name`` ``invoke_agent``, ``gen_ai.agent.name`` (the developer),
  ``gen_ai.conversation.id`` (the trace id), ``gen_ai.provider.name`` and ``gen_ai.request.model``
  from the trace's metadata (``provider``, ``model``; the provider is ``unknown`` when not given,
  as the convention requires one), and ``debugtrace.*`` attributes: repository, bug, test verdict,
  scores (``debugtrace.could_not_test``: why the tests gave no verdict). Status OK when the fix
  validated, ERROR when finalize found it did not, UNSET when not checked or could not test.
- a child ``execute_tool run_command`` / ``execute_tool edit_file`` span per command and edit (a
  call of the agent's own tool, ``details.tool``, is ``execute_tool {tool}`` with its arguments, as
  in the chat export), from the event's timestamp for its ``duration_s``: ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id`` (``call_<seq>``, as in the chat export), ``gen_ai.tool.type``
  ``function``, the opt-in ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result`` (output
  head and tail), and ``process.exit.code``; status ERROR for a non-zero exit or an edit that
  did not apply.
- reasoning as span events named ``debugtrace.reasoning`` on the root span.

The encoding follows the OTLP/JSON rules: trace and span ids are lowercase hex (16 and 8 bytes),
enums are integers, 64-bit integers are decimal strings. Ids are derived from the trace id (sha256),
so exporting a trace again gives the same ids (and a backend can tell it is the same trace).

Every value the model accepts exports: times are clamped to what an unsigned 64-bit count of
nanoseconds since 1970 holds (1970-01-01 to 2554-07-21; the model takes years 1 to 9999), an end
past 9999-12-31 stops there, an integer outside int64 becomes a string attribute, and a non-finite
double is written as the strings protobuf's JSON mapping defines (``"NaN"``, ``"Infinity"``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from pydantic_core import to_json

from debugtrace import __version__
from debugtrace.export import ExportOptions, JsonLines
from debugtrace.export.chat import agent_tool, edit_result
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent, Trace
from debugtrace.storage import could_not_test, effective_run
from debugtrace.textutil import head_tail

__all__ = ["to_otlp", "writer"]

SPAN_KIND_INTERNAL = 1
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def trace_id_hex(trace_id: str) -> str:
    """The OTel trace id (32 hex digits) of a debugtrace trace id."""
    return hashlib.sha256(f"debugtrace:{trace_id}".encode()).hexdigest()[:32]


def span_id_hex(trace_id: str, part: str) -> str:
    """A span id (16 hex digits) for one part (``root`` or an event's seq) of a trace."""
    return hashlib.sha256(f"debugtrace:{trace_id}:{part}".encode()).hexdigest()[:16]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


_MAX_NANOS = 2**64 - 1
_INT64 = range(-(2**63), 2**63)
_LAST = datetime.max.replace(tzinfo=UTC)


def _nanos(when: datetime) -> str:
    # OTLP times are fixed64: before 1970 or after 2554 they cannot be written, so they are clamped.
    nanos = (when - _EPOCH) // _MICROSECOND * 1000
    return str(min(max(nanos, 0), _MAX_NANOS))


def _after(when: datetime, seconds: float) -> datetime:
    """``when`` plus ``seconds``, at most 9999-12-31 (the last datetime there is)."""
    try:
        return when + timedelta(seconds=seconds)
    except OverflowError:
        return _LAST


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if value not in _INT64:  # intValue is an int64
            return {"stringValue": str(value)}
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attrs(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in pairs.items() if v is not None]


def to_otlp(trace: Trace, options: ExportOptions | None = None) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` (as a JSON-ready dict) holding the trace's spans."""
    options = options or ExportOptions()
    tid = str(trace.id)
    otel_trace = trace_id_hex(tid)
    root = span_id_hex(tid, "root")
    applied = {r.seq: r for r in trace.result.edits}
    children: list[dict[str, Any]] = []
    span_events: list[dict[str, Any]] = []
    start = trace.created_at
    end = trace.updated_at or trace.created_at
    if trace.events:
        start = trace.events[0].timestamp
        end = start
    for seq, ev in trace.numbered():
        ev_end = ev.timestamp
        if isinstance(ev, ReasoningEvent):
            d = ev.details
            span_events.append(
                {
                    "timeUnixNano": _nanos(ev.timestamp),
                    "name": "debugtrace.reasoning",
                    "attributes": _attrs(
                        {
                            "debugtrace.reasoning.text": d.text,
                            "debugtrace.reasoning.type": d.reasoning_type,
                            "debugtrace.reasoning.confidence": d.confidence,
                            "debugtrace.event.seq": seq,
                        }
                    ),
                }
            )
        else:
            status: dict[str, Any] = {"code": STATUS_UNSET}
            found = agent_tool(ev.details) if isinstance(ev, CommandEvent) else None
            name = (
                found[0]
                if found
                else "run_command"
                if isinstance(ev, CommandEvent)
                else "edit_file"
            )
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": f"call_{seq}",
                "gen_ai.tool.type": "function",
            }
            if isinstance(ev, CommandEvent):
                c = ev.details
                args: dict[str, Any] = {"command": c.command}
                if found is not None:
                    args = found[1]
                elif c.cwd is not None:
                    args["cwd"] = c.cwd
                attrs["gen_ai.tool.call.result"] = head_tail(c.output, options.max_output_bytes)
                attrs["process.exit.code"] = c.exit_code
                if c.duration_s:
                    ev_end = _after(ev.timestamp, c.duration_s)
                if c.exit_code:
                    status = {"code": STATUS_ERROR, "message": f"exit code {c.exit_code}"}
            else:
                assert isinstance(ev, EditEvent)
                args = {"path": ev.details.file, "diff": ev.details.diff}
                outcome = applied.get(seq)
                attrs["gen_ai.tool.call.result"] = edit_result(ev.details.file, outcome)
                if outcome is not None and outcome.status != "applied":
                    status = {"code": STATUS_ERROR, "message": outcome.message or outcome.status}
            attrs["gen_ai.tool.call.arguments"] = json.dumps(args, ensure_ascii=False)
            attrs["debugtrace.event.seq"] = seq
            children.append(
                {
                    "traceId": otel_trace,
                    "spanId": span_id_hex(tid, str(seq)),
                    "parentSpanId": root,
                    "name": f"execute_tool {name}",
                    "kind": SPAN_KIND_INTERNAL,
                    "startTimeUnixNano": _nanos(ev.timestamp),
                    "endTimeUnixNano": _nanos(ev_end),
                    "attributes": _attrs(attrs),
                    "status": status,
                }
            )
        start = min(start, ev.timestamp) if start is not None else ev.timestamp
        end = max(end, ev_end) if end is not None else ev_end
    if start is None or end is None:  # a trace that was never stored: no times at all
        start = end = datetime.now(UTC)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs({"service.name": "debugtrace"})},
                "scopeSpans": [
                    {
                        "scope": {"name": "debugtrace.export", "version": __version__},
                        "spans": [
                            _root_span(trace, options, root, start, end, span_events),
                            *children,
                        ],
                    }
                ],
            }
        ]
    }


def _root_span(
    trace: Trace,
    options: ExportOptions,
    span_id: str,
    start: datetime,
    end: datetime,
    span_events: list[dict[str, Any]],
) -> dict[str, Any]:
    result = effective_run(trace.result)
    v = result.validation
    untested = could_not_test(result)
    meta = trace.metadata
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": str(meta.get("provider") or "unknown"),
        "gen_ai.agent.name": trace.developer_id,
        "gen_ai.conversation.id": trace.id,
        "gen_ai.request.model": meta.get("model") if isinstance(meta.get("model"), str) else None,
        "debugtrace.repo_url": trace.repo_url,
        "debugtrace.bug_description": trace.bug_description,
        "debugtrace.base_commit": trace.base_commit,
        "debugtrace.status": trace.status,
        "debugtrace.fix_validated": v.fix_validated if v is not None else None,
        "debugtrace.could_not_test": untested,
        "debugtrace.environment": v.environment if v is not None and v.environment else None,
        "debugtrace.fail_to_pass": list(v.fail_to_pass) if v is not None else None,
        "debugtrace.pass_to_fail": list(v.pass_to_fail) if v is not None else None,
        "debugtrace.score": result.score(options.grader),
    }
    for name, grade in result.latest_grades().items():
        attrs[f"debugtrace.grade.{name}"] = grade.score
    if v is None or v.fix_validated is None:  # not checked, or could not test
        status: dict[str, Any] = {"code": STATUS_UNSET}
    elif v.fix_validated:
        status = {"code": STATUS_OK}
    else:
        status = {"code": STATUS_ERROR, "message": "the fix did not validate"}
    span: dict[str, Any] = {
        "traceId": trace_id_hex(str(trace.id)),
        "spanId": span_id,
        "name": f"invoke_agent {trace.developer_id}",
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(end),
        "attributes": _attrs(attrs),
        "status": status,
    }
    if span_events:
        span["events"] = span_events
    return span


def writer(out: BinaryIO, options: ExportOptions) -> JsonLines:
    """JSON Lines of :func:`to_otlp` requests (one ExportTraceServiceRequest per line)."""
    return JsonLines(out, options, to_otlp, _dump)


def _dump(request: Any) -> bytes:
    # "strings": protobuf's JSON form of a non-finite double; `fallback`: any object Python
    # code put into a trace still writes (as its str) instead of ending the export.
    return to_json(request, inf_nan_mode="strings", fallback=str)
