"""Issue 14, items 12 and low: numbers in a trace are finite, bounded and of the schema's type.

`duration_s: 1e300` used to be accepted (and then crashed the OpenTelemetry export for everyone),
`Infinity`/`NaN` were stored as null, and `exit_code` `"1"`/`true` were coerced to 1.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from debugtrace import InvalidTrace, parse_events, parse_trace

# The bounds (debugtrace.model.MAX_DURATION_S and EXIT_CODES), spelt out so that this file also runs
# against the code before them.
MAX_DURATION_S = 366 * 24 * 3600
EXIT_CODES = (-(2**31), 2**32 - 1)

TRACE = {"developer_id": "dev", "repo_url": "https://example.com/r.git", "bug_description": "b"}


def command(**details: Any) -> dict[str, Any]:
    return {"type": "command", "details": {"command": "pytest", **details}}


def errors(exc: pytest.ExceptionInfo[InvalidTrace]) -> dict[str, str]:
    return {e.where: e.msg for e in exc.value.errors}


def refused(doc: Any, trace: bool = False) -> dict[str, str]:
    """The errors of parsing ``doc`` (events, or a trace), as objects and as JSON text."""
    parse = parse_trace if trace else parse_events
    with pytest.raises(InvalidTrace) as exc:
        parse(doc)
    return errors(exc)


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1e300, MAX_DURATION_S + 1, 1.7976931348623157e308, -1, -1e-9])
def test_a_duration_outside_zero_to_a_year_is_refused_naming_the_field(value: float) -> None:
    for doc in ([command(duration_s=value)], json.dumps([command(duration_s=value)])):
        assert "events.0.details.duration_s" in refused(doc)


def test_durations_from_zero_to_a_year_are_kept() -> None:
    evs = parse_events([command(duration_s=v) for v in (0, 0.25, 3, MAX_DURATION_S)])
    assert [e.details.duration_s for e in evs] == [0, 0.25, 3, MAX_DURATION_S]  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["2.5", True, "inf", [1]])
def test_a_duration_must_be_a_json_number_not_a_string_or_boolean(value: Any) -> None:
    for doc in ([command(duration_s=value)], json.dumps([command(duration_s=value)])):
        assert "events.0.details.duration_s" in refused(doc)


# -- NaN and Infinity, wherever a number can be ----------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_json_text_are_refused_in_every_field(token: str) -> None:
    # pydantic-core's parser reads these tokens (not JSON) and 1e400 overflows to inf: each used
    # to be stored as null. Typed fields, extra detail keys and metadata alike refuse them.
    def text(doc: Any) -> str:
        return json.dumps(doc).replace('"@N@"', token)

    cases = {
        "events.0.details.duration_s": text([command(duration_s="@N@")]),
        "events.0.details.confidence": text(
            [{"type": "reasoning", "details": {"text": "x", "confidence": "@N@"}}]
        ),
        "events.0.details.took": text([command(took="@N@")]),
        "events.0.details.run.times.1": text(
            [{"type": "edit", "details": {"file": "f", "diff": "", "run": {"times": [1, "@N@"]}}}]
        ),
    }
    for where, doc in cases.items():
        errs = refused(doc)
        assert where in errs, (doc, errs)
        assert "finite" in errs[where] or "NaN and Infinity" in errs[where]
    errs = refused(text({**TRACE, "metadata": {"cost": {"usd": "@N@"}}}), trace=True)
    assert "NaN and Infinity" in errs["metadata.cost.usd"]
    stage = {"name": "apply", "status": "ok", "duration_s": "@N@"}
    grade = {"score": 3, "duration_s": "@N@"}
    errs = refused(text({**TRACE, "result": {"stages": [stage], "grades": [grade]}}), trace=True)
    assert {"result.stages.0.duration_s", "result.grades.0.duration_s"} <= set(errs)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_from_python_are_refused_too(value: float) -> None:
    assert "events.0.details.duration_s" in refused([command(duration_s=value)])
    reasoning = {"type": "reasoning", "details": {"text": "x", "confidence": value}}
    assert "finite" in refused([reasoning])["events.0.details.confidence"]
    assert "events.0.details.score" in refused([command(score=value)])
    assert "metadata.nested.0" in refused({**TRACE, "metadata": {"nested": [value]}}, trace=True)


def test_a_non_finite_number_is_refused_in_a_trace_built_as_a_model_too() -> None:
    from debugtrace.model import Trace

    trace = Trace.model_validate(TRACE)
    trace.metadata = {"x": math.inf}  # assignment is not validated: ingest checks the model again
    with pytest.raises(InvalidTrace, match=r"metadata\.x: Infinity"):
        parse_trace(trace)


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "0", True, False, 1.0, 1.5, "one", [0]])
def test_exit_code_is_a_strict_integer_never_coerced(value: Any) -> None:
    for doc in ([command(exit_code=value)], json.dumps([command(exit_code=value)])):
        assert "events.0.details.exit_code" in refused(doc)


@pytest.mark.parametrize("value", [EXIT_CODES[0] - 1, EXIT_CODES[1] + 1, 2**63, -(2**63) - 1])
def test_exit_code_outside_any_platforms_range_is_refused(value: int) -> None:
    for doc in ([command(exit_code=value)], json.dumps([command(exit_code=value)])):
        assert "events.0.details.exit_code" in refused(doc)


@pytest.mark.parametrize("value", [0, 1, 255, -9, EXIT_CODES[0], EXIT_CODES[1], None])
def test_real_exit_codes_are_kept_as_sent(value: int | None) -> None:
    for doc in ([command(exit_code=value)], json.dumps([command(exit_code=value)])):
        assert parse_events(doc)[0].details.exit_code == value  # type: ignore[union-attr]


# -- confidence (already bounded; the message for NaN is now clear) -----------------------------


def test_confidence_nan_is_refused_as_not_finite() -> None:
    reasoning = {"type": "reasoning", "details": {"text": "x", "confidence": math.nan}}
    msg = refused([reasoning])["events.0.details.confidence"]
    assert "finite" in msg


def test_the_model_publishes_these_bounds() -> None:
    from debugtrace import model

    assert (model.MAX_DURATION_S, model.EXIT_CODES) == (MAX_DURATION_S, EXIT_CODES)
