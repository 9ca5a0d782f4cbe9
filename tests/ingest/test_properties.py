"""Property tests: any valid trace survives model -> JSON -> storage -> JSON unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from debugtrace import parse_events, parse_trace
from debugtrace.model import repo_url_problem
from debugtrace.storage.sql.storage import SQLStorage
from support.strategies import events
from support.strategies import traces as any_traces

# The shared strategy's repo_url is any text; the few that read as a malformed URL
# ("a://[") are refused by the model (tests/security/test_model_repo_url_must_parse.py).
traces = any_traces.filter(lambda doc: repo_url_problem(doc["repo_url"]) is None)

SERVER_FIELDS = {"id", "status", "created_at", "updated_at", "result"}


def wire(doc: Any) -> Any:
    """Through JSON text and back, as a client would send it."""
    return json.loads(json.dumps(doc))


def comparable(trace_json: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in trace_json.items() if k not in SERVER_FIELDS}
    for ev in doc["events"]:
        ev.pop("seq")
    return doc


@given(traces)
def test_model_to_json_and_back_is_lossless(doc: dict[str, Any]) -> None:
    trace = parse_trace(wire(doc))
    again = parse_trace(trace.model_dump_json())
    assert again == trace
    assert again.model_dump(mode="json") == trace.model_dump(mode="json")


@given(events)
def test_detail_keys_come_back_exactly_as_sent(evs: list[dict[str, Any]]) -> None:
    parsed = parse_events(wire(evs))
    for sent, got in zip(evs, parsed, strict=True):
        dumped = got.details.model_dump(mode="json", exclude_unset=True)
        assert dumped.keys() == sent["details"].keys()
        for key, value in sent["details"].items():
            if key != "duration_s" and key != "confidence":
                assert dumped[key] == wire(value)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def storage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('props') / 'props.db'}"
        yield (s := SQLStorage(url))
        s.close()
        return
    from conftest import drop_pg_database, make_pg_database

    url, name = make_pg_database()
    s = SQLStorage(url)
    yield s
    s.close()
    drop_pg_database(name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=traces)
def test_storage_round_trip_is_lossless(storage: SQLStorage, doc: dict[str, Any]) -> None:
    sent = parse_trace(wire(doc))
    stored = storage.create(sent)
    got = storage.get(str(stored.id))
    assert got == stored
    assert comparable(json.loads(got.model_dump_json())) == comparable(
        json.loads(sent.model_dump_json())
    )
    assert [e.seq for e in got.events] == list(range(1, len(sent.events) + 1))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=traces, batches=events.flatmap(lambda a: events.map(lambda b: (a, b))))
def test_appended_batches_round_trip_in_order(
    storage: SQLStorage, doc: dict[str, Any], batches: tuple[list[Any], list[Any]]
) -> None:
    tid = str(storage.create(parse_trace(wire(doc))).id)
    for batch in batches:
        storage.append_events(tid, parse_events(wire(batch)))
    got = storage.get(tid)
    sent = parse_trace(wire(doc)).events + [e for b in batches for e in parse_events(wire(b))]
    strip = lambda evs: [{**e.model_dump(mode="json"), "seq": None} for e in evs]  # noqa: E731
    assert strip(got.events) == strip(sent)
    assert [e.seq for e in got.events] == list(range(1, len(sent) + 1))
