"""The trace model: the seed's wire shape, what is accepted, what is refused and how it says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from debugtrace import InvalidTrace, Limits, parse_events, parse_trace
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent

SEED = {
    "developer_id": "dev_042",
    "repo_url": "https://github.com/example/calc",
    "bug_description": "divide() returns an int for exact results and crashes on zero",
    "events": [
        {
            "type": "reasoning",
            "timestamp": "2025-03-02T09:00:00Z",
            "details": {
                "text": "The crash mentions ZeroDivisionError",
                "reasoning_type": "hypothesis",
                "confidence": "medium",
            },
        },
        {
            "type": "command",
            "timestamp": "2025-03-02T09:01:30Z",
            "details": {"command": "pytest -x", "output": "FAILED test_divide_by_zero"},
        },
        {
            "type": "edit",
            "timestamp": "2025-03-02T09:04:10Z",
            "details": {"file": "calc.py", "diff": "--- a/calc.py\n+++ b/calc.py\n"},
        },
    ],
}


def errors_of(exc: pytest.ExceptionInfo[InvalidTrace]) -> dict[str, str]:
    return {e.where: e.msg for e in exc.value.errors}


def test_the_seed_document_is_accepted_as_is() -> None:
    trace = parse_trace(SEED)
    assert [type(e) for e in trace.events] == [ReasoningEvent, CommandEvent, EditEvent]
    assert trace.events[0].details.confidence == "medium"


def test_the_shared_example_file_is_accepted(shared_example: dict[str, object]) -> None:
    assert len(parse_trace(shared_example).events) == 4


@pytest.fixture
def shared_example() -> dict[str, object]:
    from pathlib import Path

    path = Path(__file__).parent / "data" / "minimal-trace.json"
    return json.loads(path.read_text())


def test_json_text_and_bytes_are_accepted() -> None:
    assert parse_trace(json.dumps(SEED)) == parse_trace(json.dumps(SEED).encode())


def test_unknown_detail_keys_are_kept_and_returned() -> None:
    doc = json.loads(json.dumps(SEED))
    doc["events"][1]["details"]["tool"] = {"name": "bash", "pid": 7}
    trace = parse_trace(doc)
    dumped = trace.model_dump(mode="json")
    assert dumped["events"][1]["details"]["tool"] == {"name": "bash", "pid": 7}


def test_unknown_event_type_is_refused_naming_it_and_the_allowed_types() -> None:
    with pytest.raises(InvalidTrace) as exc:
        parse_events([{"type": "thought", "details": {"text": "x"}}])
    msg = errors_of(exc)["events.0"]
    assert "'thought'" in msg
    assert "'reasoning', 'command', 'edit'" in msg


def test_errors_name_the_field_path_the_user_wrote() -> None:
    doc = json.loads(json.dumps(SEED))
    doc["events"][1]["details"]["exit_code"] = "zero"
    del doc["developer_id"]
    with pytest.raises(InvalidTrace) as exc:
        parse_trace(doc)
    errs = errors_of(exc)
    assert set(errs) == {"developer_id", "events.1.details.exit_code"}


def test_unknown_top_level_keys_are_refused_as_likely_typos() -> None:
    with pytest.raises(InvalidTrace) as exc:
        parse_trace({**SEED, "bug_desc": "x"})
    assert "bug_desc" in errors_of(exc)


@pytest.mark.parametrize("value", ["low", "medium", "high", "HIGH", "Medium", 0, 0.5, 1])
def test_confidence_accepts_words_and_numbers_and_keeps_what_was_sent(value: object) -> None:
    ev = parse_events([{"type": "reasoning", "details": {"text": "x", "confidence": value}}])[0]
    assert isinstance(ev, ReasoningEvent)
    assert ev.details.confidence == value
    assert type(ev.details.confidence) is type(value) or isinstance(value, int)


def test_confidence_words_map_to_numbers_when_needed() -> None:
    ev = ReasoningEvent.new("x", confidence="High")
    assert ev.details.confidence_value == 0.85
    assert ReasoningEvent.new("x", confidence=0.3).details.confidence_value == 0.3


@pytest.mark.parametrize("value", ["sure", 1.5, -0.1, True, [1]])
def test_confidence_refuses_anything_else(value: object) -> None:
    with pytest.raises(InvalidTrace) as exc:
        parse_events([{"type": "reasoning", "details": {"text": "x", "confidence": value}}])
    assert "events.0.details.confidence" in errors_of(exc)


def test_reasoning_type_is_free_text() -> None:
    ev = ReasoningEvent.new("x", reasoning_type="hunch")
    assert ev.details.reasoning_type == "hunch"


def test_timestamps_are_utc_and_naive_means_utc() -> None:
    evs = parse_events(
        [
            {"type": "reasoning", "timestamp": "2025-03-02T09:00:00", "details": {"text": "a"}},
            {
                "type": "reasoning",
                "timestamp": "2025-03-02T11:00:00+02:00",
                "details": {"text": "b"},
            },
        ]
    )
    expected = datetime(2025, 3, 2, 9, tzinfo=UTC)
    assert [e.timestamp for e in evs] == [expected, expected]
    assert all(e.timestamp.utcoffset() == timedelta(0) for e in evs)


def test_a_timestamp_with_no_utc_equivalent_is_a_field_error() -> None:
    bad = {"type": "reasoning", "timestamp": "0001-01-01T00:00:00+00:01", "details": {"text": "a"}}
    with pytest.raises(InvalidTrace, match=r"events\.0\.timestamp: .*out of range"):
        parse_events([bad])


def test_a_missing_timestamp_defaults_to_now() -> None:
    before = datetime.now(UTC)
    ev = parse_events([{"type": "command", "details": {"command": "ls"}}])[0]
    assert before <= ev.timestamp <= datetime.now(UTC)


def test_events_come_as_a_list_or_wrapped_in_events() -> None:
    one = [{"type": "command", "details": {"command": "ls"}}]
    assert len(parse_events(one)) == len(parse_events({"events": one})) == 1
    with pytest.raises(InvalidTrace, match="expected a list of events"):
        parse_events({"evnts": one})


def test_size_limits_name_the_field_and_the_setting() -> None:
    limits = Limits(max_output_bytes=10, max_diff_bytes=10, max_text_bytes=10)
    with pytest.raises(InvalidTrace) as exc:
        parse_events(
            [
                {"type": "command", "details": {"command": "ls", "output": "x" * 11}},
                {"type": "edit", "details": {"file": "f", "diff": "é" * 6}},  # 12 bytes
                {"type": "reasoning", "details": {"text": "x" * 10}},  # exactly at the limit
            ],
            limits,
        )
    errs = errors_of(exc)
    assert set(errs) == {"events.0.details.output", "events.1.details.diff"}
    assert "DEBUGTRACE_MAX_OUTPUT_BYTES" in errs["events.0.details.output"]


def test_extra_details_are_bounded_too() -> None:
    limits = Limits(max_details_bytes=20)
    with pytest.raises(InvalidTrace, match="DEBUGTRACE_MAX_DETAILS_BYTES"):
        parse_events([{"type": "command", "details": {"command": "ls", "x": "y" * 30}}], limits)


def test_events_per_request_limit() -> None:
    limits = Limits(max_events_per_request=2)
    three = [{"type": "command", "details": {"command": "ls"}}] * 3
    with pytest.raises(InvalidTrace, match="DEBUGTRACE_MAX_EVENTS_PER_REQUEST"):
        parse_events(three, limits)
    with pytest.raises(InvalidTrace, match="3 events in one request"):
        parse_trace({**SEED, "events": three}, limits)


def test_nul_characters_are_refused_in_column_fields_but_fine_in_output() -> None:
    with pytest.raises(InvalidTrace, match="NUL"):
        parse_trace({**SEED, "developer_id": "a\x00b"})
    ev = parse_events([{"type": "command", "details": {"command": "x", "output": "a\x00b"}}])[0]
    assert isinstance(ev, CommandEvent) and ev.details.output == "a\x00b"


def test_base_commit_cannot_look_like_an_option() -> None:
    with pytest.raises(InvalidTrace) as exc:
        parse_trace({**SEED, "base_commit": "--upload-pack=evil"})
    assert "base_commit" in errors_of(exc)


def test_malformed_json_says_where_it_broke() -> None:
    with pytest.raises(InvalidTrace, match=r"malformed JSON: .*line 1 column"):
        parse_trace('{"developer_id": ')


def test_the_json_schema_describes_every_event_type() -> None:
    from debugtrace.model import Trace

    schema = Trace.model_json_schema()
    assert {"ReasoningEvent", "CommandEvent", "EditEvent"} <= set(schema["$defs"])
    assert schema["$defs"]["CommandDetails"]["additionalProperties"] is True
