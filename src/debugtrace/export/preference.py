"""``--format dpo``: preference pairs, a validated attempt against a failed one on the same bug.

Each line is one pair in TRL's *conversational preference* format, with the tools and provenance::

    {"prompt": [system, user], "chosen": [assistant, tool, ...], "rejected": [assistant, ...],
     "tools": [...], "metadata": {...}}

The messages are the chat rows' (:func:`~debugtrace.export.chat.chat_messages`), so a pair
reads like two jsonl rows that share their first two messages. TRL's shape is used because a
debugging attempt is many turns (calls, tool results, more calls): TRL's DPO trainer takes a
continuation of any length after the prompt, while OpenAI's preference fine-tuning takes exactly
one assistant message per side (and no tool results), which would keep only the first turn of
each attempt. ``docs/export.md`` shows how to cut a pair down to OpenAI's shape.

Where pairs come from (both sides are real recorded turns after the same prompt; nothing is
synthesized):

- **Several traces on one bug.** Traces are grouped by :func:`bug_key`: the repository URL
  (without ``.git`` or a trailing slash), the bug description (whitespace collapsed) and the
  commit the tests ran on (``Validation.base_sha``, else the trace's ``base_commit``). A trace
  whose verdict (:func:`~debugtrace.storage.effective_run`) validated is a *chosen* candidate, one
  whose tests ran and said no is a *rejected* one; a fix that could not be tested, or was never
  finalized, is neither. The prompt is the system message and the chosen trace's user message
  (the key makes them the same task; ``metadata.user_messages_differ`` says when the rejected
  trace's user message was worded differently, e.g. without the base commit line). Each side is
  the rest of its trace's conversation.
- **A fix that failed before one that validated, in one trace** (an earlier finalize run in
  ``result.history`` that did not validate): not emitted. A run does not record how many events
  it saw (``TraceResult`` holds stages, per-edit results, the validation and grades), so where
  the failed attempt ends in the conversation is unknown; pairing would be a guess.
- **An edit later reverted**: not emitted. The rejected side would be the edit's turn up to its
  revert, but no recorded turn follows the same prompt (the turn after the revert was written
  with the failed attempt in view). :func:`debugtrace.export.steps.dead_ends` marks those
  turns for the SFT rows instead.

Memory is bounded: the writer sees one trace at a time (newest first). Per bug it keeps at most
:data:`MAX_PER_SIDE` candidates on each side (the newest), rendered with their provenance into an
anonymous temporary file; the pairs are written at ``close()``, at
most ``MAX_PER_SIDE ** 2`` per bug. In memory a bug costs a 16-byte digest of its key and the
file offsets of its candidates, whatever the length of its description.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import IO, Any, BinaryIO

from pydantic_core import to_json

from debugtrace.export import ExportOptions
from debugtrace.export.chat import JSON_SAFE, chat_messages, chat_tools
from debugtrace.export.hygiene import home
from debugtrace.export.select import fix_key
from debugtrace.model import EditEvent, Trace
from debugtrace.storage import could_not_test, effective_run

__all__ = ["MAX_PER_SIDE", "BugKey", "bug_key", "merge_tools", "pair", "writer"]

MAX_PER_SIDE = 3
"""Candidates kept per bug and side (validated / not validated): the newest ones."""

BugKey = tuple[str, str, str | None]
"""(repository, bug description, commit the tests ran on), normalized."""


def bug_key(trace: Trace) -> BugKey:
    """What makes two traces attempts at the same bug: the repository URL without ``.git`` and
    trailing slashes, the bug description with runs of whitespace made one space, and the commit
    the tests ran on (``Validation.base_sha`` of the verdict run, else ``base_commit``; None when
    neither is known: such traces pair only with each other)."""
    repo = trace.repo_url.strip().rstrip("/").removesuffix(".git").rstrip("/")
    bug = " ".join(trace.bug_description.split())
    v = effective_run(trace.result).validation
    base = (v.base_sha if v is not None else None) or trace.base_commit
    return repo, bug, base


Spilled = tuple[int, int]
"""Where a candidate's rendered attempt is in the spill file: (offset, length)."""


class _PreferenceWriter:
    def __init__(self, out: BinaryIO, options: ExportOptions) -> None:
        self.out = out
        self.options = options
        # per bug (a digest of its key): the validated and the failed candidates kept
        self.bugs: dict[bytes, tuple[list[Spilled], list[Spilled]]] = {}
        # closed in close(): it lives as long as the writer
        self.spill: IO[bytes] = tempfile.TemporaryFile(prefix="debugtrace-dpo-")  # noqa: SIM115
        self.size = 0
        self.pairs = 0

    def write(self, trace: Trace) -> None:
        result = effective_run(trace.result)
        v = result.validation
        if v is None or v.fix_validated is None or could_not_test(result) is not None:
            return
        key = bug_key(trace)
        digest = hashlib.sha256(json.dumps(key).encode()).digest()[:16]
        chosen, rejected = self.bugs.setdefault(digest, ([], []))
        side = chosen if v.fix_validated else rejected
        if len(side) >= MAX_PER_SIDE:
            return
        messages = chat_messages(trace, self.options.max_output_bytes)
        if not any(m["role"] == "assistant" for m in messages[2:]):
            return  # nothing the agent did
        attempt = {
            "fix": fix_key(trace),  # the net change: two attempts with the same one pair nothing
            "repo_url": home(key[0]),
            "base_commit": key[2],
            "messages": messages,
            "tools": chat_tools(trace),
            "provenance": _provenance(trace, self.options.grader),
        }
        blob = to_json(attempt, **JSON_SAFE)
        self.spill.write(blob)
        side.append((self.size, len(blob)))
        self.size += len(blob)

    def close(self) -> None:
        try:
            for chosen, rejected in self.bugs.values():
                if chosen and rejected:
                    self._pairs(chosen, rejected)
        finally:
            self.spill.close()
            self.bugs = {}

    def _load(self, where: Spilled) -> dict[str, Any]:
        self.spill.seek(where[0])
        loaded: dict[str, Any] = json.loads(self.spill.read(where[1]))
        return loaded

    def _pairs(self, chosen: list[Spilled], rejected: list[Spilled]) -> None:
        bads = [self._load(r) for r in rejected]
        for c in chosen:
            good = self._load(c)
            for bad in bads:
                row = pair(good, bad)
                if row is None:
                    continue
                if self.options.metadata:
                    row["metadata"] = {
                        "source": "same_bug",
                        "repo_url": good["repo_url"],
                        "base_commit": good["base_commit"],
                        "user_messages_differ": good["messages"][:2] != bad["messages"][:2],
                        "chosen": good["provenance"],
                        "rejected": bad["provenance"],
                    }
                self.out.write(to_json(row, **JSON_SAFE) + b"\n")
                self.pairs += 1


def pair(good: dict[str, Any], bad: dict[str, Any]) -> dict[str, Any] | None:
    """The row for two rendered attempts (``{"messages", "tools"}`` each): the prompt is the
    chosen attempt's system and user messages; None when the continuations are the same."""
    chosen, rejected = good["messages"][2:], bad["messages"][2:]
    if chosen == rejected or good.get("fix") == bad.get("fix"):
        # the same change validated once and failed once: flaky tests (or a changed
        # environment), not a lesson; turns that differ only in what commands printed alike
        return None
    return {
        "prompt": good["messages"][:2],
        "chosen": chosen,
        "rejected": rejected,
        "tools": merge_tools(good["tools"], bad["tools"]),
    }


def merge_tools(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tool of the lists, once, in order of first appearance; an agent tool both sides
    call has the argument names of both (each side's schema lists those it used)."""
    merged: dict[str, dict[str, Any]] = {}
    for tools in lists:
        for tool in tools:
            name = tool["function"]["name"]
            seen = merged.get(name)
            if seen is None:
                merged[name] = json.loads(json.dumps(tool))  # a copy: the merge must not leak
                continue
            props = seen["function"].get("parameters", {}).get("properties")
            more = tool["function"].get("parameters", {}).get("properties", {})
            if isinstance(props, dict) and isinstance(more, dict):
                for key, schema in more.items():
                    props.setdefault(key, schema)
    return list(merged.values())


def _provenance(trace: Trace, grader: str | None) -> dict[str, Any]:
    result = effective_run(trace.result)
    v = result.validation
    seqs = [seq for seq, _ in trace.numbered()]
    return {
        "trace_id": trace.id,
        "developer_id": trace.developer_id,
        "created_at": trace.created_at.isoformat() if trace.created_at else None,
        "fix_validated": v.fix_validated if v is not None else None,
        "fail_to_pass": list(v.fail_to_pass) if v is not None else [],
        "pass_to_fail": list(v.pass_to_fail) if v is not None else [],
        "score": result.score(grader),
        "seqs": [seqs[0], seqs[-1]] if seqs else [],
        "edit_seqs": [
            s for s, ev in zip(seqs, trace.events, strict=True) if isinstance(ev, EditEvent)
        ],
    }


def writer(out: BinaryIO, options: ExportOptions) -> _PreferenceWriter:
    """JSON Lines of preference pairs, written when the writer is closed."""
    return _PreferenceWriter(out, options)
