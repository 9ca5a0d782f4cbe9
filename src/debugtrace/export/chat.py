"""A trace as one chat fine-tuning row (OpenAI's chat format with tool calls), JSON Lines.

The row is ``{"messages": [...], "tools": [...], "metadata": {...}}``:

- a fixed system message (:data:`SYSTEM_PROMPT`) describing the debugging assistant;
- a user message with the repository, base commit, branch and the bug;
- then the events in ``seq`` order, each rendered once. Reasoning is assistant text. A shell
  command is an assistant tool call of ``run_command`` (``{"command", "cwd"}``); a call of the
  agent's own tool (a command event with ``details.tool`` and ``details.arguments``, as the
  importers write for SWE-agent's ``find_file``, Claude Code's ``Read``...) is a call of that
  tool with its arguments; either is followed by a ``tool`` message with the output (head and
  tail kept), preceded by the exit code when it is known. An edit is a tool call of ``edit_file``
  (``{"path", "diff"}``) followed by a ``tool`` message saying how it applied; an edit that only
  restates an agent's edit call rendered just before it (same call id) is not rendered again, a
  final patch always is. Reasoning right before a tool call is the content of that call's
  assistant message (think, then act); consecutive reasoning events are joined with a blank line;
  reasoning after the last tool call ends the conversation as a plain assistant message; text the
  agent did not write (``details.speaker`` ``user`` or ``environment``: a later prompt, a harness's
  feedback) is a user message;
- ``tools``: the JSON Schemas of ``run_command`` and ``edit_file``, and of every agent tool the
  trace calls (its argument names, as recorded), as fine-tuning with tool calls expects;
- ``metadata``: trace id, developer, repository, the test verdict, grades and the score. OpenAI's
  upload refuses keys it does not know, so ``ExportOptions(metadata=False)`` (CLI
  ``--no-metadata``) leaves it out.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from pydantic_core import to_json

from debugtrace.export import ExportOptions, JsonLines
from debugtrace.export.hygiene import Scrub, home, strip_git_headers
from debugtrace.export.steps import dead_ends
from debugtrace.model import (
    CommandDetails,
    CommandEvent,
    EditEvent,
    ReasoningDetails,
    ReasoningEvent,
    Trace,
)
from debugtrace.results import EditResult
from debugtrace.storage import could_not_test, effective_run
from debugtrace.textutil import head_tail, strip_debugtrace_flags

__all__ = [
    "JSON_SAFE",
    "SYSTEM_PROMPT",
    "TOOLS",
    "agent_tool",
    "call_ids",
    "chat_metadata",
    "chat_tools",
    "event_call",
    "restates_call",
    "spoken_by_others",
    "to_chat",
    "writer",
]

JSON_SAFE: dict[str, Any] = {"inf_nan_mode": "null", "fallback": str}
"""``pydantic_core.to_json`` options that write every value as valid JSON: NaN and Infinity (which
ingest refuses, but Python code can build) as null, objects JSON has no form for as their str."""

SYSTEM_PROMPT = (
    "You are a debugging assistant working in a git repository. Find the cause of the reported bug "
    "and fix it: state each hypothesis and how confident you are, test it by running commands and "
    "reading their output, change files with unified diffs, and check that the fix works."
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "run_command",
            "description": "Run a command in the repository and return its exit code and output.",
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line to run."},
                    "cwd": {"type": "string", "description": "Working directory (optional)."},
                },
                "required": ["command"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "edit_file",
            "description": "Change one file of the repository by applying a unified diff.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {
                        "type": "string",
                        "description": "Path of the file, relative to the repository root.",
                    },
                    "diff": {
                        "type": "string",
                        "description": "Unified diff with --- a/PATH and +++ b/PATH headers.",
                    },
                },
                "required": ["path", "diff"],
                "additionalProperties": False,
            },
        },
    },
]
"""The tools the assistant turns call, as JSON Schemas (OpenAI's ``tools`` parameter)."""


def base_commit(trace: Trace) -> str | None:
    """The commit the trace starts from: its own, else the one finalize resolved."""
    if trace.base_commit:
        return trace.base_commit
    v = effective_run(trace.result).validation
    return v.base_sha if v is not None and v.base_sha else None


_QUOTED = re.compile(r"`([^`\n]*)`")


def bug_text(trace: Trace, scrub: Scrub) -> str:
    """The bug as a training row says it: host paths out, and commands quoted in it (titles the
    pytest plugin wrote before it left its flags out: `CMD` fails: ...) without debugtrace's
    flags."""
    bug = trace.bug_description
    if "--debugtrace" in bug:
        bug = _QUOTED.sub(lambda m: f"`{strip_debugtrace_flags(m[1])}`", bug)
    return scrub.text(bug)


def user_message(trace: Trace, scrub: Scrub | None = None) -> str:
    """The task as the user states it: where, from which commit, and the bug (with ``scrub``: a
    local repository by its name, host paths out of the bug text)."""
    repo = scrub.repository(trace.repo_url) if scrub is not None else trace.repo_url
    lines = [f"Repository: {repo}"]
    base = base_commit(trace)
    if base:
        lines.append(f"Base commit: {base}")
    if trace.branch:
        lines.append(f"Branch: {trace.branch}")
    bug = bug_text(trace, scrub) if scrub is not None else trace.bug_description
    return "\n".join(lines) + f"\n\nBug: {bug}"


def spoken_by_others(ev: ReasoningEvent) -> bool:
    """Whether the text is not the agent's: a later user message or the harness's feedback
    (``details.speaker`` ``user`` or ``environment``, as the importers write them)."""
    return (ev.details.model_extra or {}).get("speaker") in ("user", "environment")


def reasoning_text(d: ReasoningDetails, text: str | None = None) -> str:
    """A thought as assistant text: ``Hypothesis (confidence medium): ...`` (``text`` in place
    of the recorded one: the scrubbed text)."""
    text = d.text if text is None else text
    label = (d.reasoning_type or "").strip().capitalize()
    if d.confidence is not None:
        label = f"{label} (confidence {d.confidence})".strip()
    return f"{label}: {text}" if label else text


def command_result(d: CommandDetails, max_bytes: int) -> str:
    """What a command or tool call returned: its output (head and tail), after a line with the
    exit code when it is known (``timed out`` when it timed out); nothing is said about an unknown
    exit code (SWE-agent and most agent tools record none)."""
    extra = d.model_extra or {}
    output = head_tail(d.output, max_bytes) if d.output else "(no output)"
    if extra.get("timed_out") is True:
        return f"timed out\n{output}"
    if d.exit_code is not None:
        return f"exit code: {d.exit_code}\n{output}"
    return output


_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def agent_tool(d: CommandDetails) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) when the command is a call of the agent's own tool (``details.tool`` a
    name and ``details.arguments`` an object, as :func:`debugtrace.importers._common.tool_event`
    writes), else None: a shell command. The name is made what OpenAI accepts
    (``^[A-Za-z0-9_-]{1,64}$``)."""
    extra = d.model_extra or {}
    tool, args = extra.get("tool"), extra.get("arguments")
    if not isinstance(tool, str) or not tool.strip() or not isinstance(args, dict):
        return None
    return _TOOL_NAME.sub("_", tool.strip())[:64], args


def event_call(
    ev: CommandEvent | EditEvent,
    applied: dict[int, EditResult],
    seq: int,
    max_output_bytes: int,
    scrub: Scrub | None = None,
) -> tuple[str, dict[str, Any], str]:
    """(tool name, arguments, result) of the one tool call an event renders as; with ``scrub``
    as a training row has it (:mod:`debugtrace.export.hygiene`), else as recorded."""
    if isinstance(ev, CommandEvent):
        found = agent_tool(ev.details)
        if found is not None:
            name, args = found
            if scrub is not None:
                args = {k: scrub.value(v) for k, v in args.items()}  # nested values too
        else:
            command, cwd = ev.details.command, ev.details.cwd
            if scrub is not None:
                command, cwd = scrub.command(command), scrub.cwd(cwd)
            name, args = "run_command", {"command": command}
            if cwd is not None:
                args["cwd"] = cwd
        result = command_result(ev.details, max_output_bytes)
        return name, args, scrub.text(result) if scrub is not None else result
    file, diff = ev.details.file, ev.details.diff
    if scrub is not None:
        file, diff = scrub.path(file), strip_git_headers(diff)
    return "edit_file", {"path": file, "diff": diff}, edit_result(file, applied.get(seq))


# The keys that tie an importer's event to the agent's call (one call, one id).
_CALL_IDS = ("tool_call_id", "tool_use_id", "call_id", "event_id")


def call_ids(ev: CommandEvent | EditEvent) -> set[tuple[str, Any]]:
    """The ids tying an event to the agent's call (``tool_call_id``, ``tool_use_id``...)."""
    extra = ev.details.model_extra or {}
    return {(k, extra[k]) for k in _CALL_IDS if isinstance(extra.get(k), str | int)}


def restates_call(ev: EditEvent, calls: set[tuple[str, Any]]) -> bool:
    """Whether an edit restates an agent tool call already rendered (the same call id): the
    call is the agent's action, so the edit is not rendered twice. A final patch always is."""
    if (ev.details.model_extra or {}).get("final_patch") is True:
        return False
    return bool(call_ids(ev) & calls)


def chat_tools(trace: Trace) -> list[dict[str, Any]]:
    """:data:`TOOLS`, then a schema for each agent tool the trace calls: an object with the
    argument names seen (any JSON value), in order of first use."""
    seen: dict[str, dict[str, Any]] = {}
    for ev in trace.events:
        found = agent_tool(ev.details) if isinstance(ev, CommandEvent) else None
        if found is None or found[0] in ("run_command", "edit_file"):
            continue
        name, args = found
        props = seen.setdefault(name, {})
        for key in args:
            props.setdefault(str(key), {})
    extra = [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"The agent's own {name} tool, as its trajectory recorded it.",
                "parameters": {"type": "object", "properties": props},
            },
        }
        for name, props in seen.items()
    ]
    return [*TOOLS, *extra]


def edit_result(file: str, applied: EditResult | None) -> str:
    """What ``edit_file`` returned: how finalize found the edit applied (``applied`` if it did not
    check, as the developer's own tree had it)."""
    if applied is None or applied.status == "applied":
        return f"applied to {file}"
    why = f": {applied.message}" if applied.message else ""
    return f"{applied.status} ({file}){why}"


def trace_source(trace: Trace) -> str | None:
    """Where the trace was recorded or imported from, one word: ``pytest``, ``shell``, ``cli``,
    ``claude-code``, ``swe-agent``, ``openhands``... (``metadata.source`` without the
    ``debugtrace`` of the recorders' own)."""
    source = trace.metadata.get("source")
    if not isinstance(source, str) or not source.strip():
        return None
    return source.strip().removeprefix("debugtrace ").strip() or None


def trace_model(trace: Trace) -> str | None:
    """The model of the agent that debugged, when the trace says (``metadata.model``)."""
    model = trace.metadata.get("model")
    return model if isinstance(model, str) and model else None


def chat_metadata(
    trace: Trace,
    grader: str | None = None,
    dead: dict[int, str] | None = None,
    scrub: Scrub | None = None,
) -> dict[str, Any]:
    """Who, where, what the tests said and the grades; ``score`` follows
    :meth:`debugtrace.results.TraceResult.score` (``grader``'s, else the lowest).

    The verdict is that of the trace's latest complete run (:func:`~debugtrace.storage.
    effective_run`, as the export filters read it): ``fix_validated`` true or false, or null
    with ``could_not_test`` saying why the tests gave no verdict (null when they did, or never
    ran); ``environment`` says what the tests ran in."""
    result = effective_run(trace.result)
    v = result.validation
    return {
        "trace_id": trace.id,
        "developer_id": trace.developer_id,
        "repo_url": home(trace.repo_url),
        "base_commit": base_commit(trace),
        "branch": trace.branch,
        "source": trace_source(trace),
        "model": trace_model(trace),
        "created_at": trace.created_at.isoformat() if trace.created_at else None,
        "status": trace.status,
        "fix_validated": v.fix_validated if v is not None else None,
        "could_not_test": could_not_test(result),
        "environment": v.environment if v is not None and v.environment else None,
        "fail_to_pass": list(v.fail_to_pass) if v is not None else [],
        "pass_to_fail": list(v.pass_to_fail) if v is not None else [],
        "missing_expected": list(v.missing_expected) if v is not None else [],
        "score": result.score(grader),
        "grades": [
            {
                "grader": g.grader,
                "score": g.score,
                "model": g.model,
                "rubric_version": g.rubric_version,
            }
            for g in result.latest_grades().values()
        ],
        "dead_ends": {
            str(seq): why for seq, why in (dead if dead is not None else dead_ends(trace)).items()
        },
        "trace_metadata": (scrub or Scrub(trace)).value(trace.metadata),
    }


def chat_messages(
    trace: Trace,
    max_output_bytes: int = 8000,
    *,
    clean: bool = True,
    dead: dict[int, str] | None = None,
    scrub: Scrub | None = None,
) -> list[dict[str, Any]]:
    """The conversation: system, user, then the events as assistant and tool messages, ending
    with an assistant turn. ``clean`` (the default) renders it as a training row has it: host
    paths relative, diffs without git's header lines, debugtrace's own flags out
    (:mod:`debugtrace.export.hygiene`), and the assistant turn of each dead-end edit
    (:func:`debugtrace.export.steps.dead_ends`, or ``dead``) carries OpenAI's ``"weight": 0``:
    kept as context, not learned. ``clean=False`` renders it as recorded. ``dead`` and
    ``scrub``, when the caller has them already, are not made again."""
    scrub = (scrub or Scrub(trace)) if clean else None
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(trace, scrub)},
    ]
    applied = {r.seq: r for r in trace.result.edits}
    thoughts: list[str] = []
    calls: set[tuple[str, Any]] = set()  # ids of the agent tool calls rendered so far
    outcome: str | None = None
    if dead is None:
        dead = dead_ends(trace) if clean else {}
    # an agent's edit call stands for the edit events restating it: masked with them
    dead_calls: set[tuple[str, Any]] = set()
    for seq, ev in trace.numbered():
        if isinstance(ev, EditEvent) and seq in dead:
            dead_calls |= call_ids(ev)
    for seq, ev in trace.numbered():
        if isinstance(ev, ReasoningEvent):
            text = scrub.text(ev.details.text) if scrub is not None else ev.details.text
            if ev.details.reasoning_type == "outcome":
                # how the harness's session ended (Recorder.close): its note may close the row,
                # the word alone or a crash may not
                word = (ev.details.model_extra or {}).get("outcome")
                if word not in ("error", "interrupted") and text.strip() != word:
                    outcome = text
                continue
            if (ev.details.model_extra or {}).get("harness_exit") is not None:
                continue  # why a harness stopped the run (limits, an API error): not the agent's
            if spoken_by_others(ev):
                if thoughts:
                    messages.append({"role": "assistant", "content": "\n\n".join(thoughts)})
                    thoughts = []
                messages.append({"role": "user", "content": text})
            else:
                thoughts.append(reasoning_text(ev.details, text))
            continue
        if isinstance(ev, EditEvent) and restates_call(ev, calls):
            continue
        if isinstance(ev, CommandEvent) and agent_tool(ev.details) is not None:
            calls |= call_ids(ev)
        call_id = f"call_{seq}"
        name, args, content = event_call(ev, applied, seq, max_output_bytes, scrub)
        call: dict[str, Any] = {"role": "assistant"}
        if thoughts:
            call["content"] = "\n\n".join(thoughts)
            thoughts = []
        call["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": to_json(args, **JSON_SAFE).decode()},
            }
        ]
        if seq in dead or (isinstance(ev, CommandEvent) and call_ids(ev) & dead_calls):
            call["weight"] = 0  # a dead end (export.steps): in the context, not learned
        messages.append(call)
        messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
    if thoughts:
        messages.append({"role": "assistant", "content": "\n\n".join(thoughts)})
    if messages[-1]["role"] != "assistant" or "tool_calls" in messages[-1]:
        # made from the trace, not written by the agent: it closes the row, it is not learned
        closing = closing_turn(trace, outcome, scrub)
        messages.append({"role": "assistant", "content": closing, "weight": 0})
    return messages


def closing_turn(trace: Trace, outcome: str | None = None, scrub: Scrub | None = None) -> str:
    """The last assistant turn of a conversation that ended on a tool result or a user message
    (a row ends with the assistant): what the session's outcome said, else which files changed.
    Made from the trace, never from the verdict (the model cannot know that)."""
    if outcome:
        return outcome
    files = list(
        dict.fromkeys(
            scrub.path(ev.details.file) if scrub is not None else ev.details.file
            for ev in trace.events
            if isinstance(ev, EditEvent)
        )
    )
    if not files:
        return "Done."
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return f"Done: changed {shown}."


def to_chat(trace: Trace, options: ExportOptions | None = None) -> dict[str, Any]:
    """The trace as one fine-tuning row: ``{"messages", "tools"[, "metadata"]}``."""
    options = options or ExportOptions()
    dead, scrub = dead_ends(trace), Scrub(trace)
    row: dict[str, Any] = {
        "messages": chat_messages(trace, options.max_output_bytes, dead=dead, scrub=scrub),
        "tools": chat_tools(trace),
    }
    if options.metadata:
        row["metadata"] = chat_metadata(trace, options.grader, dead, scrub)
        row["metadata"]["n_tokens"] = (
            token_count(row["messages"], row["tools"]) if options.tokens else None
        )
    return row


def token_count(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int | None:
    """The row's tokens (:mod:`debugtrace.export.tokens`), None without a tokenizer installed."""
    from debugtrace.export import tokens

    return tokens.count_tokens(messages, tools) if tokens.available() else None


def writer(out: BinaryIO, options: ExportOptions) -> JsonLines:
    """JSON Lines of :func:`to_chat` rows (UTF-8, one row per line)."""
    return JsonLines(out, options, to_chat, dump)


def dump(row: Any) -> bytes:
    """A row as JSON bytes, whatever values Python code put in it (:data:`JSON_SAFE`)."""
    return to_json(row, **JSON_SAFE)
