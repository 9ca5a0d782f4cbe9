"""Issue 14, low: a key written twice in one JSON object silently took the last copy.

Parsers disagree on which copy wins (a proxy or a validator in front of debugtrace may read the
first), so JSON text with a repeated key is refused, naming the key and where it is, at any
depth: events, details, nested extra keys, the trace, its metadata. A repeat spelt differently
(``\\u0074ype`` is ``type``) is the same key. Documents without repeats (however formatted,
whatever their strings hold) parse as before: the cheap count that decides whether the exact check
runs must never refuse them, and must never let a repeat through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import debugtrace.ingest as ingest
from debugtrace import Collector, InvalidTrace, parse_events, parse_trace

TRACE = '{"developer_id": "dev", "repo_url": "https://example.com/r.git", "bug_description": "b"'


def where(exc: pytest.ExceptionInfo[InvalidTrace]) -> dict[str, str]:
    return {e.where: e.msg for e in exc.value.errors}


EVENT_CASES = [
    # (JSON text, where the repeat is)
    ('[{"type":"command","details":{"command":"a","command":"b"}}]', "events.0.details.command"),
    ('[{"type":"command","type":"command","details":{"command":"a"}}]', "events.0.type"),
    (
        '[{"type":"command","details":{"command":"a","\\u0063ommand":"b"}}]',
        "events.0.details.command",
    ),
    (
        '[{"type":"command","details":{"command":"a"},"details":{"command":"a"}}]',
        "events.0.details",
    ),
    (
        '[{"type":"command","details":{"command":"a","x":{"y":[{"z":1,"z":1}]}}}]',
        "events.0.details.x.y.0.z",
    ),
    ('[{"type":"reasoning","details":{"text":"a","":1,"":2}}]', "events.0.details."),
    (
        '[ {"type": "command", "details": {"command": "a"}},\n'
        '  {"type" : "command", "details" : {"command" : "a", "out" :1, "out"\t:2}} ]',
        "events.1.details.out",
    ),
    (
        '{"events": [{"type":"command","details":{"command":"a","cwd":"/","cwd":"/"}}]}',
        "events.0.details.cwd",
    ),
    ('{"events": [], "events": []}', "events"),
]


@pytest.mark.parametrize(("text", "loc"), EVENT_CASES)
def test_a_repeated_key_in_an_event_batch_is_refused_naming_key_and_place(
    text: str, loc: str
) -> None:
    for doc in (text, text.encode()):
        with pytest.raises(InvalidTrace) as exc:
            parse_events(doc)
        errs = where(exc)
        assert loc in errs, errs
        key = loc.rsplit(".", 1)[-1]
        assert f"key {key!r} appears more than once" in errs[loc]


TRACE_CASES = [
    (TRACE + ', "developer_id": "other"}', "developer_id"),
    (TRACE + ', "metadata": {"a": {"b": 1, "b": 2}}}', "metadata.a.b"),
    (
        TRACE
        + ', "events": [{"type": "edit", "details": {"file": "f", "diff": "", "file": "g"}}]}',
        "events.0.details.file",
    ),
    (TRACE + ', "base_commit": "abc", "base_\\u0063ommit": "def"}', "base_commit"),
]


@pytest.mark.parametrize(("text", "loc"), TRACE_CASES)
def test_a_repeated_key_in_a_trace_is_refused_naming_key_and_place(text: str, loc: str) -> None:
    for doc in (text, text.encode()):
        with pytest.raises(InvalidTrace) as exc:
            parse_trace(doc)
        assert loc in where(exc)


def test_every_repeat_is_named() -> None:
    text = '[{"type":"command","details":{"command":"a","command":"a","x":1,"x":2}},' + (
        '{"type":"edit","type":"edit","details":{"file":"f","diff":""}}]'
    )
    with pytest.raises(InvalidTrace) as exc:
        parse_events(text)
    assert set(where(exc)) == {"events.0.details.command", "events.0.details.x", "events.1.type"}


NOT_REPEATS = [
    # Strings that look like keys, escaped quotes before colons, whitespace before colons, keys
    # equal after escaping but in different objects, near-identical keys.
    '[{"type":"command","details":{"command":"echo \\"a\\": 1, \\"a\\": 2","output":"\\":\\":"}}]',
    '[{"type" :"command" , "details"\n:\t{"command"\r\n:  "x", "X": 1, "x ": 2, "x\\u00e9": 3}}]',
    '[{"type":"reasoning","details":{"text":"t","a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}}]',
    '[{"type":"reasoning","details":{"text":"\\\\","\\\\":"\\\\\\"","k\\"":1,"k":2}}]',
    '[{"type":"edit","details":{"file":"f","diff":"{\\"file\\": \\"f\\", \\"file\\": \\"g\\"}"}}]',
    json.dumps(
        [{"type": "command", "details": {"command": "é ü", "meta": {"ключ": "значение"}}}],
        indent=4,
    ),
]


@pytest.mark.parametrize("text", NOT_REPEATS)
def test_documents_without_repeats_are_accepted_as_before(text: str) -> None:
    for doc in (text, text.encode()):
        got = [e.model_dump(mode="json", exclude={"timestamp"}) for e in parse_events(doc)]
        want = [
            e.model_dump(mode="json", exclude={"timestamp"}) for e in parse_events(json.loads(text))
        ]
        assert got == want


def test_the_library_and_http_api_refuse_repeats_in_appended_events(collector: Collector) -> None:
    from debugtrace.server.app import create_app

    tid = str(collector.submit(TRACE + "}").id)
    body = b'[{"type":"command","details":{"command":"ls","exit_code":0,"exit_code":1}}]'
    with pytest.raises(InvalidTrace, match=r"events\.0\.details\.exit_code: key 'exit_code'"):
        collector.add_events(tid, body)
    client = TestClient(create_app(collector=collector), "http://127.0.0.1")
    r = client.post(
        f"/api/traces/{tid}/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["events", 0, "details", "exit_code"]
    assert collector.get(tid).events == []
    client.close()


# -- property: the count never refuses a clean document and never lets a repeat through ----------

keys = st.text(st.characters(exclude_categories=["Cs"]), max_size=4) | st.sampled_from(
    ["type", "details", "command", ":", '"', '\\":', " : "]
)
leaves = st.none() | st.booleans() | st.integers() | keys
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
events = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("command"),
            "details": st.fixed_dictionaries(
                {"command": keys}, optional={"extra": values, "other": values}
            ),
        }
    ),
    min_size=1,
    max_size=4,
)


def quote_colon(value: Any) -> bool:
    """Whether a string of ``value`` (a key or a value) holds a quote before a colon or begins
    with a colon: its JSON text matches the count's pattern too, so the exact check runs."""
    if isinstance(value, str):
        return bool(re.match(" *:", value) or re.search('" *:', value))
    if isinstance(value, dict):
        return any(quote_colon(k) or quote_colon(v) for k, v in value.items())
    if isinstance(value, list):
        return any(quote_colon(v) for v in value)
    return False


def objects(
    value: Any, loc: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    if isinstance(value, dict):
        yield loc, value
        for k, v in value.items():
            yield from objects(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from objects(v, (*loc, i))


def dump(value: Any, style: dict[str, Any], repeat: int | None, counter: list[int]) -> str:
    """JSON text of ``value``; the object numbered ``repeat`` (in document order) writes its first
    key twice, the copy with its first character \\u-escaped when ``style["escape"]``. The key
    numbered ``style["spaced"]`` alone has a space before its colon."""
    sep: str = style["sep"]
    ensure_ascii: bool = style["ascii"]

    def key(k: str) -> str:
        counter[1] += 1
        colon = " :" if counter[1] == style["spaced"] else style["colon"]
        return json.dumps(k, ensure_ascii=ensure_ascii) + colon

    if isinstance(value, dict):
        n = counter[0]
        counter[0] += 1
        items = [key(k) + dump(v, style, repeat, counter) for k, v in value.items()]
        if n == repeat:
            k, v = next(iter(value.items()))
            spelt = (
                '"' + f"\\u{ord(k[0]):04x}" + json.dumps(k[1:])[1:]
                if style["escape"] and k and ord(k[0]) < 0x10000
                else json.dumps(k)
            )
            items.append(spelt + style["colon"] + dump(v, style, None, [0, 0]))
        return "{" + sep.join(items) + "}"
    if isinstance(value, list):
        return "[" + sep.join(dump(v, style, repeat, counter) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


styles = st.fixed_dictionaries(
    {
        "sep": st.sampled_from([",", ", ", ",\n  ", " ,\t"]),
        "colon": st.sampled_from([":", ": ", " :", "\n:\r\n", "\t: "]),
        "ascii": st.booleans(),
        "escape": st.booleans(),
        # One key with whitespace before its colon among keys without: a count that missed it
        # would be one short, exactly what one repeat adds.
        "spaced": st.integers(0, 12),
    }
)


@settings(max_examples=300, deadline=None)
@given(evs=events, style=styles, data=st.data())
def test_repeats_are_found_at_any_depth_and_clean_documents_pass(
    evs: list[dict[str, Any]], style: dict[str, Any], data: st.DataObject
) -> None:
    clean = dump(evs, style, None, [0, 0])
    want = [e.model_dump(mode="json", exclude={"timestamp"}) for e in parse_events(evs)]
    # A clean batch takes the exact (slow) check only when a string holds a quote before a colon
    # or begins with one: the count is exact otherwise (the hot path stays cheap).
    exact = ingest._refuse_repeated_keys
    with mock.patch.object(ingest, "_refuse_repeated_keys", side_effect=exact) as slow:
        for doc in (clean, clean.encode()):
            got = parse_events(doc)
            assert [e.model_dump(mode="json", exclude={"timestamp"}) for e in got] == want
    if not quote_colon(evs):
        assert slow.call_count == 0
    found = [(loc, obj) for loc, obj in objects(evs) if obj]
    n = data.draw(st.integers(0, len(found) - 1))
    loc, obj = found[n]
    order = [id(o) for _, o in objects(evs)]
    text = dump(evs, style, order.index(id(obj)), [0, 0])
    with pytest.raises(InvalidTrace) as exc:
        parse_events(text.encode())
    expected = ".".join(str(p) for p in ("events", *loc, next(iter(obj))))
    assert expected in where(exc), (text, where(exc))
