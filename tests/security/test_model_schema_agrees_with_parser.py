"""Issue 14, low (schemathesis' conformance checks): the published JSON Schema and the parser agree.

The schema (``debugtrace schema``, and the request bodies of ``/openapi.json``) allowed
``base_commit: ""`` and events without ``type``, which the parser refuses; it said nothing of
durations, exit-code ranges, NUL characters or the case-insensitive confidence words. Now a
document is valid under the schema exactly when the parser takes it, for every field the schema
can express (size limits and which repository URLs a server clones are settings, not schema).
One known difference: to JSON Schema ``1.0`` is the integer 1, while the parser takes an exit code
only as written as an integer (``1``), as pydantic's strict mode does.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from debugtrace import Collector, InvalidTrace, parse_events, parse_trace
from debugtrace.model import EVENT_LIST, Trace

TRACE = {"developer_id": "dev", "repo_url": "https://example.com/r.git", "bug_description": "b"}
MAX_DURATION_S = 366 * 24 * 3600

TRACE_SCHEMA = jsonschema_rs.validator_for(Trace.model_json_schema())
EVENTS_SCHEMA = jsonschema_rs.validator_for(EVENT_LIST.json_schema())


def parser_accepts(doc: dict[str, Any]) -> bool:
    try:
        parse_trace(json.dumps(doc))
    except InvalidTrace:
        return False
    return True


def agree(doc: dict[str, Any]) -> bool:
    """Whether schema and parser agree on ``doc``; returns the verdict (asserting agreement)."""
    verdict = TRACE_SCHEMA.is_valid(doc)
    assert verdict == parser_accepts(doc), (doc, verdict)
    events = doc.get("events")
    if events is not None:
        try:
            parse_events(json.dumps(events))
            took = True
        except InvalidTrace:
            took = False
        assert EVENTS_SCHEMA.is_valid(events) == took, events
    return verdict


def command(**details: Any) -> dict[str, Any]:
    return {"type": "command", "details": {"command": "x", **details}}


def reasoning(**details: Any) -> dict[str, Any]:
    return {"type": "reasoning", "details": {"text": "x", **details}}


CASES: list[tuple[dict[str, Any], bool]] = [
    # base_commit: a sha or ref, never empty, no whitespace or NUL, no leading "-"
    ({**TRACE, "base_commit": ""}, False),
    ({**TRACE, "base_commit": " "}, False),
    ({**TRACE, "base_commit": "-x"}, False),
    ({**TRACE, "base_commit": "a b"}, False),
    ({**TRACE, "base_commit": "abc\n"}, False),
    ({**TRACE, "base_commit": "a\x00"}, False),
    ({**TRACE, "base_commit": "main\u3000"}, False),
    ({**TRACE, "base_commit": None}, True),
    ({**TRACE, "base_commit": "0123abc"}, True),
    ({**TRACE, "base_commit": "feature/x-1"}, True),
    # every event has a type
    ({**TRACE, "events": [{"details": {"text": "x"}}]}, False),
    (
        {**TRACE, "events": [{"timestamp": "2025-01-01T00:00:00Z", "details": {"command": "x"}}]},
        False,
    ),
    ({**TRACE, "events": [reasoning()]}, True),
    # exit codes: strict integers in range
    ({**TRACE, "events": [command(exit_code="1")]}, False),
    ({**TRACE, "events": [command(exit_code=True)]}, False),
    ({**TRACE, "events": [command(exit_code=1.5)]}, False),
    ({**TRACE, "events": [command(exit_code=2**32)]}, False),
    ({**TRACE, "events": [command(exit_code=-(2**31) - 1)]}, False),
    ({**TRACE, "events": [command(exit_code=-9)]}, True),
    ({**TRACE, "events": [command(exit_code=2**32 - 1)]}, True),
    # durations: numbers from 0 to a year
    ({**TRACE, "events": [command(duration_s="2.5")]}, False),
    ({**TRACE, "events": [command(duration_s=False)]}, False),
    ({**TRACE, "events": [command(duration_s=-0.5)]}, False),
    ({**TRACE, "events": [command(duration_s=1e300)]}, False),
    ({**TRACE, "events": [command(duration_s=MAX_DURATION_S)]}, True),
    ({**TRACE, "events": [command(duration_s=0)]}, True),
    # confidence: the words in any case (whitespace around them is fine), or 0..1
    ({**TRACE, "events": [reasoning(confidence="HIGH")]}, True),
    ({**TRACE, "events": [reasoning(confidence=" low\t")]}, True),
    ({**TRACE, "events": [reasoning(confidence="mediums")]}, False),
    ({**TRACE, "events": [reasoning(confidence=1.5)]}, False),
    ({**TRACE, "events": [reasoning(confidence=True)]}, False),
    # NUL is refused in the fields that become database columns
    ({**TRACE, "developer_id": "a\x00"}, False),
    ({**TRACE, "repo_url": "a\x00"}, False),
    ({**TRACE, "branch": "\x00"}, False),
    ({**TRACE, "events": [command(output="a\x00b")]}, True),
]


def label(doc: dict[str, Any]) -> str:
    """What a case changes from TRACE, as its test id."""
    changed = {k: v for k, v in doc.items() if k not in TRACE or TRACE[k] != v}
    if "events" in changed:
        return json.dumps(changed["events"][0], ensure_ascii=True)[:80]
    return json.dumps(changed, ensure_ascii=True)[:60]


@pytest.mark.parametrize(("doc", "valid"), CASES, ids=[label(doc) for doc, _ in CASES])
def test_schema_and_parser_agree(doc: dict[str, Any], valid: bool) -> None:
    assert agree(doc) == valid


# Characters where the regex dialects differ (\s in Rust, Python and ECMAScript), and letters.
tricky = st.text(
    st.sampled_from(
        [
            "a",
            "H",
            "i",
            "g",
            "h",
            "l",
            "o",
            "w",
            "m",
            "e",
            "d",
            "u",
            "-",
            "/",
            ":",
            "0",
            "\x00",
            " ",
            "\t",
            "\n",
            "\x0b",
            "\x1c",
            "\x1f",
            "\x85",
            "\xa0",
            "\u1680",
            "\u2007",
            "\u2028",
            "\u200b",
            "\u202f",
            "\u3000",
            "\ufeff",
            "İ",
            "K",
        ]
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(text=tricky)
def test_any_base_commit_or_confidence_word_is_judged_alike(text: str) -> None:
    agree({**TRACE, "base_commit": text})
    agree({**TRACE, "events": [reasoning(confidence=text)]})
    agree({**TRACE, "developer_id": text or "x", "branch": text})


@settings(max_examples=200, deadline=None)
@given(
    value=st.integers(-(2**40), 2**40)
    | st.floats(-10, 2 * MAX_DURATION_S, allow_nan=False).filter(lambda f: not f.is_integer())
    | st.booleans()
    | st.text(st.sampled_from("0123456789.-e"), max_size=4)
    | st.none()
)
def test_any_exit_code_or_duration_is_judged_alike(value: Any) -> None:
    agree({**TRACE, "events": [command(exit_code=value)]})
    agree({**TRACE, "events": [command(duration_s=value)]})


def test_the_openapi_request_bodies_carry_the_same_rules(collector: Collector) -> None:
    from debugtrace.server.app import create_app

    client = TestClient(create_app(collector=collector), "http://127.0.0.1")
    spec = client.get("/openapi.json").json()
    client.close()
    body = spec["paths"]["/api/traces"]["post"]["requestBody"]["content"]["application/json"]
    schemas = {**spec.get("components", {}).get("schemas", {}), **body["schema"].get("$defs", {})}
    base_commit = Trace.model_json_schema()["properties"]["base_commit"]["anyOf"]
    assert body["schema"]["properties"]["base_commit"]["anyOf"] == base_commit
    for name in ("ReasoningEvent", "CommandEvent", "EditEvent"):
        assert "type" in schemas[name]["required"], name
        assert "default" not in schemas[name]["properties"]["type"]
    exit_code = schemas["CommandDetails"]["properties"]["exit_code"]["anyOf"][0]
    assert (exit_code["minimum"], exit_code["maximum"]) == (-(2**31), 2**32 - 1)
