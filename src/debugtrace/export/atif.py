"""A trace as one ATIF document (Harbor's Agent Trajectory Interchange Format), one per line.

Each line is a complete ``ATIF-v1.7`` trajectory (the newest version the spec defines):

- ``agent``: the agent the trace was imported from (``metadata.agent`` / ``agent_version``), else
  the developer, with ``model_name`` from ``metadata.model`` and ``tool_definitions`` (the same
  schemas as the chat export's ``tools``);
- step 1, ``source: "user"``: the task as the chat export states it (repository, commit, bug);
- then one ``agent`` step per tool call: the reasoning right before it is the step's ``message``
  (reasoning an importer marked as the model's own channel, ``details.reasoning_content``, goes
  to ``reasoning_content``), the call is its one ``tool_calls`` entry (``call_<seq>``; the same
  name and arguments as the chat export, and a shell tool recorded by the ATIF importer keeps its
  name and arguments; a final patch's ``edit_file`` call has ``extra.final_patch``), and its
  result is ``observation.results[0]`` with ``source_call_id``;
  reasoning after the last call is a final agent step with only a message; a later user message
  (``details.speaker: "user"``) is a user step, the harness's feedback (``"environment"``) a
  result without ``source_call_id``;
- ``final_metrics.total_steps``, and ``total_cost_usd`` when ``metadata.cost`` is a number;
- ``extra.debugtrace``: the trace id, repository, commit, bug and what finalize found (as the
  chat export's ``metadata``), so the ATIF importer reads the trace back whole.

:func:`problems` checks a document against the spec's required fields (the exported ones and
Harbor's own files pass).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from debugtrace import __version__
from debugtrace.export import ExportOptions, JsonLines
from debugtrace.export.chat import (
    agent_tool,
    call_ids,
    chat_metadata,
    chat_tools,
    dump,
    event_call,
    reasoning_text,
    restates_call,
    user_message,
)
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent, Trace

__all__ = ["SCHEMA_VERSION", "problems", "to_atif", "writer"]

SCHEMA_VERSION = "ATIF-v1.7"
SOURCES = ("system", "user", "agent")
AGENT_ONLY = ("model_name", "reasoning_effort", "reasoning_content", "tool_calls", "metrics")


def to_atif(trace: Trace, options: ExportOptions | None = None) -> dict[str, Any]:
    """The trace as one ATIF trajectory (a JSON-ready dict)."""
    options = options or ExportOptions()
    meta = trace.metadata
    applied = {r.seq: r for r in trace.result.edits}
    steps: list[dict[str, Any]] = [_step(1, "user", user_message(trace), trace.created_at)]
    thoughts: list[str] = []
    channel: list[str] = []  # the model's reasoning channel (reasoning_content)
    calls: set[tuple[str, Any]] = set()
    for seq, ev in trace.numbered():
        if isinstance(ev, ReasoningEvent):
            extra = ev.details.model_extra or {}
            if extra.get("speaker") == "user":
                steps += _agent_turn(steps, thoughts, channel, ev.timestamp)
                thoughts, channel = [], []
                steps.append(_step(len(steps) + 1, "user", ev.details.text, ev.timestamp))
            elif extra.get("speaker") == "environment":
                # Feedback no call produced: a result without source_call_id, on the agent step
                # it answers (the pending reasoning's, else the last agent step).
                steps += _agent_turn(steps, thoughts, channel, ev.timestamp)
                thoughts, channel = [], []
                if steps[-1]["source"] != "agent":
                    steps.append(_step(len(steps) + 1, "agent", "", ev.timestamp))
                obs = steps[-1].setdefault("observation", {"results": []})
                obs["results"].append({"content": ev.details.text})
            elif extra.get("reasoning_content") is True:
                channel.append(ev.details.text)
            else:
                thoughts.append(reasoning_text(ev.details))
            continue
        if isinstance(ev, EditEvent) and restates_call(ev, calls):
            continue
        if isinstance(ev, CommandEvent) and agent_tool(ev.details) is not None:
            calls |= call_ids(ev)
        name, args, content = event_call(ev, applied, seq, options.max_output_bytes)
        if isinstance(ev, CommandEvent):
            extra = ev.details.model_extra or {}
            if not ev.details.output and content == "(no output)":
                content = ""  # ATIF's own way to say the call returned nothing
            shell, recorded = extra.get("shell_tool"), extra.get("arguments")
            if isinstance(shell, str) and shell and isinstance(recorded, dict):
                name, args = shell, recorded  # the shell tool as the ATIF file called it
        step = _step(len(steps) + 1, "agent", "\n\n".join(thoughts), ev.timestamp)
        if channel:
            step["reasoning_content"] = "\n\n".join(channel)
        call_id = f"call_{seq}"
        call = {"tool_call_id": call_id, "function_name": name, "arguments": args}
        if isinstance(ev, EditEvent) and (ev.details.model_extra or {}).get("final_patch") is True:
            call["extra"] = {"final_patch": True}  # the submission: what finalize applies
        step["tool_calls"] = [call]
        step["observation"] = {"results": [{"source_call_id": call_id, "content": content}]}
        steps.append(step)
        thoughts, channel = [], []
    last = trace.events[-1].timestamp if trace.events else None
    steps += _agent_turn(steps, thoughts, channel, last)

    agent: dict[str, Any] = {
        "name": _text(meta.get("agent")) or trace.developer_id,
        "version": _text(meta.get("agent_version")) or "unknown",
    }
    if _text(meta.get("model")):
        agent["model_name"] = meta["model"]
    agent["tool_definitions"] = chat_tools(trace)
    final: dict[str, Any] = {"total_steps": len(steps)}
    cost = meta.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        final["total_cost_usd"] = cost
    ours = chat_metadata(trace, options.grader)
    ours.pop("trace_metadata", None)
    ours["bug_description"] = trace.bug_description
    ours["exported_by"] = f"debugtrace {__version__}"
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if trace.id:
        doc["session_id"] = _text(meta.get("session_id")) or trace.id
        doc["trajectory_id"] = trace.id
    doc.update({"agent": agent, "steps": steps, "final_metrics": final})
    doc["extra"] = {"debugtrace": ours}
    return doc


def _step(step_id: int, source: str, message: str, when: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"step_id": step_id}
    if when is not None:
        step["timestamp"] = when.isoformat().replace("+00:00", "Z")
    step.update({"source": source, "message": message})
    return step


def _agent_turn(
    steps: list[dict[str, Any]], thoughts: list[str], channel: list[str], when: Any
) -> list[dict[str, Any]]:
    """A message-only agent step for reasoning no call followed (none when there is none)."""
    if not thoughts and not channel:
        return []
    step = _step(len(steps) + 1, "agent", "\n\n".join(thoughts), when)
    if channel:
        step["reasoning_content"] = "\n\n".join(channel)
    return [step]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def problems(doc: Any) -> list[str]:
    """What a document lacks to be ATIF, per the spec's required fields: the root's
    ``schema_version``, ``agent`` (``name``, ``version``) and ``steps`` (at least one); each step's
    ``step_id`` (1, 2, ... in order), ``source`` (system, user or agent) and ``message`` (a string
    or content parts); agent-only fields only on agent steps; each tool call's ``tool_call_id``,
    ``function_name`` and ``arguments`` (an object); each observation's ``results`` (a list), and
    a ``source_call_id`` naming a call of the same step. Empty when it has all of them."""
    out: list[str] = []
    if not isinstance(doc, dict):
        return [f"the document is a {type(doc).__name__}, not an object"]
    version = doc.get("schema_version")
    if not (isinstance(version, str) and version.startswith("ATIF-v1.")):
        out.append(f"schema_version {version!r} is not ATIF-v1.N")
    agent = doc.get("agent")
    if not isinstance(agent, dict):
        out.append("agent is missing")
    else:
        out += [f"agent.{k} is not a string" for k in ("name", "version") if not _isstr(agent, k)]
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        return [*out, "steps is not a non-empty list"]
    for n, step in enumerate(steps, start=1):
        where = f"step {n}"
        if not isinstance(step, dict):
            out.append(f"{where} is not an object")
            continue
        if step.get("step_id") != n:
            out.append(f"{where}: step_id is {step.get('step_id')!r}, not {n}")
        if step.get("source") not in SOURCES:
            out.append(f"{where}: source {step.get('source')!r} is not one of {SOURCES}")
        if not isinstance(step.get("message"), str | list):
            out.append(f"{where}: message is missing (a string or content parts)")
        if step.get("source") != "agent":
            out += [f"{where}: {k} on a {step.get('source')} step" for k in AGENT_ONLY if k in step]
        calls = step.get("tool_calls") or []
        ids = set()
        for k, call in enumerate(calls if isinstance(calls, list) else [None]):
            if not isinstance(call, dict):
                out.append(f"{where}: tool call {k} is not an object")
                continue
            for key in ("tool_call_id", "function_name"):
                if not _isstr(call, key):
                    out.append(f"{where}: tool call {k} has no {key}")
            if not isinstance(call.get("arguments"), dict):
                out.append(f"{where}: tool call {k}: arguments is not an object")
            ids.add(call.get("tool_call_id"))
        obs = step.get("observation")
        if obs is None:
            continue
        results = obs.get("results") if isinstance(obs, dict) else None
        if not isinstance(results, list):
            out.append(f"{where}: observation.results is not a list")
            continue
        for r in results:
            sci = r.get("source_call_id") if isinstance(r, dict) else None
            if sci is not None and sci not in ids:
                out.append(f"{where}: source_call_id {sci!r} names no call of the step")
    return out


def _isstr(obj: dict[str, Any], key: str) -> bool:
    return isinstance(obj.get(key), str) and bool(obj[key])


def writer(out: BinaryIO, options: ExportOptions) -> JsonLines:
    """JSON Lines of :func:`to_atif` documents (one ATIF trajectory per line)."""
    return JsonLines(out, options, to_atif, dump)
