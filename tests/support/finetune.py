"""OpenAI's rules for a chat fine-tuning row with tool calls, as a checker.

From OpenAI's fine-tuning guide ("Preparing your dataset", chat format; "Fine-tuning with
function/tool calling"; the ``weight`` key of multi-turn examples) and the cookbook's format
checks ("Data preparation and analysis for chat model fine-tuning"): a row is ``{"messages",
"tools"?}``; roles are system, developer, user, assistant and tool; an assistant message has
text content or ``tool_calls`` (``{id, type: "function", function: {name, arguments}}``, the
name one of ``tools`` and matching ``^[a-zA-Z0-9_-]{1,64}$``, the arguments a JSON object);
every call is answered by a ``tool`` message with its ``tool_call_id`` before the conversation
goes on; ``weight`` (0 or 1) only on assistant messages; the last message is the assistant's.
We also check the arguments against the tool's own JSON Schema, which OpenAI's upload does not
but a model trained on the row would learn.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

ROLES = {"system", "developer", "user", "assistant", "tool"}
ROW_KEYS = {"messages", "tools", "parallel_tool_calls"}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def problems(row: dict[str, Any]) -> list[str]:
    """What in ``row`` breaks the rules (empty when it is a valid training example)."""
    found: list[str] = []
    if set(row) - ROW_KEYS:
        found.append(f"unknown row keys {sorted(set(row) - ROW_KEYS)}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*found, "no messages"]
    schemas: dict[str, Any] = {}
    for tool in row.get("tools") or []:
        fn = tool.get("function", {})
        if tool.get("type") != "function" or not NAME.match(str(fn.get("name", ""))):
            found.append(f"bad tool {tool!r:.80}")
        schemas[fn.get("name")] = fn.get("parameters", {"type": "object"})
        jsonschema.Draft202012Validator.check_schema(schemas[fn.get("name")])
    pending: dict[str, str] = {}  # call id -> tool name, not answered yet
    seen_ids: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        where = f"message {i} ({role})"
        if role not in ROLES:
            found.append(f"{where}: unknown role")
            continue
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1)):
            found.append(f"{where}: weight {m['weight']!r} (0 or 1, on assistant messages only)")
        if role == "tool":
            call = m.get("tool_call_id")
            if call not in pending:
                found.append(f"{where}: answers {call!r}, which no open call has")
            pending.pop(call, None)
            if not isinstance(m.get("content"), str):
                found.append(f"{where}: content must be text")
            continue
        if pending:
            found.append(f"{where}: calls {sorted(pending)} were not answered before it")
            pending.clear()
        calls = m.get("tool_calls")
        if role != "assistant" or not calls:
            if not isinstance(m.get("content"), str) or not m["content"].strip():
                found.append(f"{where}: no text")
            if calls:
                found.append(f"{where}: only the assistant calls tools")
            continue
        for call in calls:
            fn = call.get("function", {})
            name, cid = fn.get("name"), call.get("id")
            if call.get("type") != "function" or not isinstance(cid, str) or cid in seen_ids:
                found.append(f"{where}: call id {cid!r} missing or repeated")
            seen_ids.add(cid)
            pending[cid] = name
            if name not in schemas:
                found.append(f"{where}: calls {name!r}, which is not among the tools")
                continue
            try:
                args = json.loads(fn.get("arguments", ""))
            except (TypeError, ValueError):
                found.append(f"{where}: arguments of {name} are not JSON")
                continue
            if not isinstance(args, dict):
                found.append(f"{where}: arguments of {name} are not an object")
                continue
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(schemas[name]).iter_errors(args)
            )
            if error is not None:
                found.append(f"{where}: arguments of {name}: {error.message}")
    if pending:
        found.append(f"calls {sorted(pending)} are never answered")
    last = messages[-1]
    if last.get("role") != "assistant" or last.get("tool_calls"):
        found.append("the last message is not an assistant's answer")
    return found
