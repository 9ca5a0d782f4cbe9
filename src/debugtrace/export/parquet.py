"""Traces as a Parquet file: one row per trace, for analytics and for training.

Needs the extra ``parquet`` (``pip install 'debugtrace-collector[parquet]'``).

Columns: who, where and when (``source``: pytest, shell, claude-code, swe-agent...; ``model``:
the agent's model when the trace says); event counts per kind; the test verdict
(``fix_validated``, null with ``could_not_test`` saying why when the tests gave no verdict;
``fail_to_pass``); the score (:meth:`debugtrace.results.TraceResult.score`) and each grader's
latest score (``scores``, a list of ``{grader, score}``); the chat conversation of
:mod:`debugtrace.export.chat` as a ``messages`` list of ``{role, content, tool_calls,
tool_call_id, weight}`` structs (what chat templates read) and ``tools`` as JSON text (each
tool's parameter schema has its own shape, which one Arrow type cannot hold); ``n_tokens`` when
a tokenizer is installed (:mod:`debugtrace.export.tokens`). Every type has a ``datasets``
feature, so ``load_dataset("parquet", data_files=...)`` reads the file as is. Rows are written
in row groups of :data:`ROW_GROUP_ROWS` rows (or fewer when their messages pass
:data:`ROW_GROUP_BYTES`), so memory stays flat whatever the number of traces.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pydantic_core import to_json

from debugtrace.export import ExportOptions
from debugtrace.export.chat import (
    JSON_SAFE,
    base_commit,
    bug_text,
    chat_messages,
    chat_tools,
    token_count,
    trace_model,
    trace_source,
)
from debugtrace.export.hygiene import Scrub, home
from debugtrace.model import Trace
from debugtrace.storage import could_not_test, effective_run

__all__ = ["ROW_GROUP_BYTES", "ROW_GROUP_ROWS", "schema", "writer"]

ROW_GROUP_ROWS = 2000
ROW_GROUP_BYTES = 64 * 1024 * 1024
"""A row group is written when it holds this many rows, or this many bytes of messages JSON."""


def schema() -> Any:
    """The ``pyarrow.Schema`` of the rows."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    count = pa.int32()
    call = pa.struct(
        [
            ("id", pa.string()),
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
        ]
    )
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", pa.string()),
            ("weight", count),
        ]
    )
    return pa.schema(
        [
            ("trace_id", pa.string()),
            ("developer_id", pa.string()),
            ("repo_url", pa.string()),
            ("bug_description", pa.string()),
            ("source", pa.string()),
            ("model", pa.string()),
            ("base_commit", pa.string()),
            ("branch", pa.string()),
            ("status", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("n_events", count),
            ("n_reasoning", count),
            ("n_commands", count),
            ("n_edits", count),
            ("n_failed_commands", count),
            ("fix_validated", pa.bool_()),
            ("could_not_test", pa.string()),
            ("n_fail_to_pass", count),
            ("fail_to_pass", pa.list_(pa.string())),
            ("n_pass_to_fail", count),
            ("score", count),
            ("scores", pa.list_(pa.struct([("grader", pa.string()), ("score", count)]))),
            ("metadata", pa.string()),
            ("messages", pa.list_(message)),
            ("tools", pa.string()),
            ("n_tokens", count),
        ]
    )


_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "weight")


def row(trace: Trace, options: ExportOptions) -> dict[str, Any]:
    """One trace as a row (a dict of the schema's columns)."""
    kinds = {"reasoning": 0, "command": 0, "edit": 0}
    failed = 0
    for ev in trace.events:
        kinds[ev.type] += 1
        if ev.type == "command" and ev.details.exit_code:
            failed += 1
    result = effective_run(trace.result)
    v = result.validation
    scrub = Scrub(trace)
    messages = chat_messages(trace, options.max_output_bytes, scrub=scrub)
    tools = chat_tools(trace)
    return {
        "trace_id": trace.id,
        "developer_id": trace.developer_id,
        "repo_url": home(trace.repo_url),
        "bug_description": bug_text(trace, scrub),
        "source": trace_source(trace),
        "model": trace_model(trace),
        "base_commit": base_commit(trace),
        "branch": trace.branch,
        "status": trace.status,
        "created_at": trace.created_at,
        "n_events": len(trace.events),
        "n_reasoning": kinds["reasoning"],
        "n_commands": kinds["command"],
        "n_edits": kinds["edit"],
        "n_failed_commands": failed,
        "fix_validated": v.fix_validated if v is not None else None,
        "could_not_test": could_not_test(result),
        "n_fail_to_pass": len(v.fail_to_pass) if v is not None else 0,
        "fail_to_pass": list(v.fail_to_pass) if v is not None else [],
        "n_pass_to_fail": len(v.pass_to_fail) if v is not None else 0,
        "score": result.score(options.grader),
        "scores": [
            {"grader": name, "score": g.score} for name, g in result.latest_grades().items()
        ],
        "metadata": to_json(scrub.value(trace.metadata), **JSON_SAFE).decode(),
        "messages": [{k: m.get(k) for k in _MESSAGE_KEYS} for m in messages],
        "tools": to_json(tools, **JSON_SAFE).decode(),
        "n_tokens": token_count(messages, tools) if options.tokens else None,
    }


def _size(r: dict[str, Any]) -> int:
    """About how many bytes a row holds: its text (messages with their calls' arguments, the bug,
    metadata, tools), what the row group bound counts."""
    size = len(r["bug_description"]) + len(r["metadata"]) + len(r["tools"])
    for m in r["messages"]:
        size += len(m["content"] or "")
        for call in m["tool_calls"] or ():
            size += len(call["function"]["arguments"])
    return size


class _ParquetWriter:
    def __init__(self, out: BinaryIO, options: ExportOptions) -> None:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

        self.options = options
        self.schema = schema()
        self.columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        self.rows = 0
        self.bytes = 0
        self.parquet = pq.ParquetWriter(out, self.schema, compression="zstd")

    def write(self, trace: Trace) -> None:
        self.write_row(row(trace, self.options))

    def write_row(self, r: dict[str, Any]) -> None:
        for name, values in self.columns.items():
            values.append(r[name])
        self.rows += 1
        self.bytes += _size(r)
        if self.rows >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

        if self.rows:
            table = pa.Table.from_pydict(self.columns, schema=self.schema)
            self.parquet.write_table(table)
            for values in self.columns.values():
                values.clear()
            self.rows = self.bytes = 0

    def close(self) -> None:
        self._flush()
        self.parquet.close()


def writer(out: BinaryIO, options: ExportOptions) -> _ParquetWriter:
    """A Parquet file (zstd) with one row per trace."""
    return _ParquetWriter(out, options)
