"""Issue 14, item 12: no value the model accepts can break an export (one bad trace used to end
`debugtrace export --format otel` for everyone: `duration_s: 1e300` overflowed a timedelta).

Traces at the edges of every bound (years 1 and 9999, a year-long command ending past 9999-12-31,
the extreme exit codes, huge integers and floats in free-form fields) export in every format, and
what comes out is valid: strict JSON (no NaN/Infinity), OTLP times that fit an unsigned 64-bit
nanosecond count, int64 integer attributes, a Parquet file that reads back.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debugtrace import Collector, InvalidTrace, parse_trace
from debugtrace.export import FORMATS, export
from debugtrace.model import Trace
from debugtrace.results import Grade, TraceResult, Validation

# The model's bounds (debugtrace.model.MAX_DURATION_S and EXIT_CODES), spelt out so that this file
# also runs against the code before them.
MAX_DURATION_S = 366 * 24 * 3600
EXIT_CODES = (-(2**31), 2**32 - 1)
FIRST = "0001-01-01T00:00:00Z"
LAST = "9999-12-31T23:59:59.999999Z"
BIG_INT = 10**40
BIG_FLOAT = sys.float_info.max
U64 = 2**64
I64 = range(-(2**63), 2**63)


def edge_trace(**fields: Any) -> dict[str, Any]:
    """A trace touching every bound the model has."""
    return {
        "developer_id": "d" * 255,
        "repo_url": "https://[::1]:65535/a[1].git",
        "bug_description": "",
        "base_commit": "9" * 40,
        "branch": "ü",
        "created_at": LAST,
        "metadata": {
            "provider": {"nested": [BIG_INT]},
            "model": BIG_INT,
            "cost": BIG_FLOAT,
            "tiny": 5e-324,
            "neg": -BIG_FLOAT,
        },
        "events": [
            {
                "type": "reasoning",
                "timestamp": FIRST,
                "details": {"text": "", "confidence": 5e-324, "big": BIG_INT},
            },
            {"type": "reasoning", "timestamp": FIRST, "details": {"text": "x", "confidence": 1}},
            {
                "type": "command",
                "timestamp": FIRST,
                "details": {"command": "", "exit_code": EXIT_CODES[0], "duration_s": 0},
            },
            {
                "type": "command",
                "timestamp": LAST,
                "details": {
                    "command": "sleep",
                    "output": "",
                    "exit_code": EXIT_CODES[1],
                    "duration_s": MAX_DURATION_S,
                    "cost": BIG_FLOAT,
                },
            },
            {"type": "edit", "timestamp": LAST, "details": {"file": "", "diff": ""}},
        ],
        **fields,
    }


def with_results(trace: Trace) -> Trace:
    trace.result = TraceResult(
        validation=Validation(fail_to_pass=["t"], fix_validated=True),
        grades=[Grade(score=1, grader="a", duration_s=BIG_FLOAT), Grade(score=5, grader="b")],
    )
    return trace


def strict_json(line: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} in exported JSON")

    return json.loads(line, parse_constant=refuse)


def check_otlp(doc: dict[str, Any]) -> None:
    for resource in doc["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
                assert 0 <= start <= end < U64, span["name"]
                for ev in span.get("events", []):
                    assert 0 <= int(ev["timeUnixNano"]) < U64
                for attr in span["attributes"]:
                    if "intValue" in attr["value"]:
                        assert int(attr["value"]["intValue"]) in I64, attr


def check_exports(traces: list[Trace]) -> None:
    """Export ``traces`` in every format; each output is complete and valid."""
    for name in FORMATS:
        if name == "parquet" and FORMATS[name].missing():
            continue
        out = io.BytesIO()
        assert export(traces, name, out) == len(traces)
        data = out.getvalue()
        if name == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

            table = pq.read_table(io.BytesIO(data))
            assert table.num_rows == len(traces)
            for row in table.to_pylist():
                strict_json(json.dumps(row["messages"], allow_nan=False).encode())
                strict_json(row["tools"].encode())
                strict_json(row["metadata"].encode())
            continue
        lines = data.splitlines()
        # dpo writes a line per pair of traces on one bug, at most one per trace here
        assert len(lines) <= len(traces) if name == "dpo" else len(lines) == len(traces)
        for line in lines:
            doc = strict_json(line)
            if name == "otel":
                check_otlp(doc)


def test_the_reported_trace_is_refused_at_ingest() -> None:
    doc = edge_trace()
    doc["events"][3]["details"]["duration_s"] = 1e300
    with pytest.raises(InvalidTrace, match=r"events\.3\.details\.duration_s"):
        parse_trace(doc)


def test_traces_at_every_bound_export_in_every_format() -> None:
    traces = [
        with_results(parse_trace(edge_trace())),
        parse_trace(edge_trace(created_at=FIRST, events=[])),
        parse_trace(edge_trace(created_at=None, events=[])),  # never stored: no times at all
        with_results(parse_trace(edge_trace(created_at=FIRST))),
    ]
    check_exports(traces)
    spans = strict_json(_otel_line(traces[0]))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    # The year-long command that starts at the last microsecond of 9999 ends there (and both
    # are clamped to the last time OTLP can carry); the year-1 ones to the epoch.
    by_name = {_attr(s, "gen_ai.tool.call.id")["stringValue"]: s for s in spans[1:]}
    assert by_name["call_4"]["endTimeUnixNano"] == str(U64 - 1)
    assert by_name["call_3"]["startTimeUnixNano"] == "0"


def _attr(span: dict[str, Any], key: str) -> dict[str, Any]:
    return next(a["value"] for a in span["attributes"] if a["key"] == key)


def _otel_line(trace: Trace) -> bytes:
    out = io.BytesIO()
    export([trace], "otel", out)
    return out.getvalue()


def test_integers_beyond_int64_and_python_only_values_still_export() -> None:
    # Through the Python API a trace can hold what JSON input cannot: an event seq beyond int64
    # (storage assigns it; a model built in Python keeps it), a non-finite float or an object in
    # metadata (refused at ingest, but export takes any Trace). None of them ends the export.
    trace = parse_trace(edge_trace())
    trace.events[2].seq = 2**70
    trace.metadata = {
        "nan": float("nan"),
        "inf": float("inf"),
        "when": datetime.now(UTC),
        "o": object(),
    }
    check_exports([trace])
    attrs = [
        a
        for s in strict_json(_otel_line(trace))["resourceSpans"][0]["scopeSpans"][0]["spans"]
        for a in s["attributes"]
        if a["key"] == "debugtrace.event.seq"
    ]
    assert {"stringValue": str(2**70)} in [a["value"] for a in attrs]


def test_stored_edge_traces_export_from_storage(collector: Collector) -> None:
    for doc in (edge_trace(), edge_trace(created_at=FIRST)):
        collector.submit(doc)
    check_exports(list(collector.iter_traces()))
    for name in ("jsonl", "otel"):
        out = io.BytesIO()
        assert collector.export(name, out) == 2


# -- any trace the model accepts ------------------------------------------------------------------

# Text as JSON can carry it: no lone surrogates (pydantic-core's JSON parser refuses them).
plain = st.characters(exclude_categories=["Cs"])
no_surrogates = st.text(plain, max_size=30)
column = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | no_surrogates,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(plain, max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
when = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
).map(lambda d: d.replace(tzinfo=UTC).isoformat())
event = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("reasoning"),
            "timestamp": when,
            "details": st.fixed_dictionaries(
                {"text": no_surrogates},
                optional={
                    "confidence": st.floats(0, 1)
                    | st.sampled_from(["low", " HIGH "])
                    | st.integers(0, 1),
                    "extra": json_values,
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("command"),
            "timestamp": when,
            "details": st.fixed_dictionaries(
                {"command": no_surrogates},
                optional={
                    "output": no_surrogates,
                    "exit_code": st.integers(*EXIT_CODES),
                    "duration_s": st.floats(0, MAX_DURATION_S),
                    "extra": json_values,
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("edit"),
            "timestamp": when,
            "details": st.fixed_dictionaries({"file": no_surrogates, "diff": no_surrogates}),
        }
    ),
)
traces = st.fixed_dictionaries(
    {
        "developer_id": column.filter(bool),
        "repo_url": st.sampled_from(
            ["https://example.com/r.git", "/tmp/a[1]", "ssh://git@[::1]:22/r"]
        ),
        "bug_description": column,
        "events": st.lists(event, max_size=5),
    },
    optional={
        "created_at": when,
        "metadata": st.dictionaries(st.text(plain, max_size=5), json_values, max_size=3),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(traces, min_size=1, max_size=3))
def test_any_accepted_trace_exports_in_every_format(docs: list[dict[str, Any]]) -> None:
    check_exports([parse_trace(doc) for doc in docs])
