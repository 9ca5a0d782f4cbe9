"""Hypothesis strategies for valid traces and events, in wire (JSON) form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# JSON values as a real client could send them: finite floats, any unicode text.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)

texts = st.text(max_size=200) | st.text(max_size=5000, alphabet="ab\n ")
column_text = st.text(max_size=100).filter(lambda s: "\x00" not in s)
names = st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s)

timestamps = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)).flatmap(
    lambda dt: st.sampled_from(
        [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ).map(lambda tz: dt.replace(tzinfo=tz).isoformat())
)


def _extra(known: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in known), json_values, max_size=3
    )


def _details(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    known = set(required) | set(optional)
    return st.fixed_dictionaries(required, optional=optional).flatmap(
        lambda d: _extra(known).map(lambda extra: {**extra, **d})
    )


reasoning = st.fixed_dictionaries(
    {
        "type": st.just("reasoning"),
        "timestamp": timestamps,
        "details": _details(
            {"text": texts},
            {
                "reasoning_type": st.sampled_from(["hypothesis", "plan", "conclusion", "hunch"]),
                "confidence": st.sampled_from(["low", "medium", "High"])
                | st.floats(0, 1)
                | st.none(),
            },
        ),
    }
)
command = st.fixed_dictionaries(
    {
        "type": st.just("command"),
        "timestamp": timestamps,
        "details": _details(
            {"command": st.text(max_size=100)},
            {
                "output": texts,
                "exit_code": st.integers(-255, 255) | st.none(),
                "cwd": st.text(max_size=30) | st.none(),
                "duration_s": st.floats(0, 1e6) | st.none(),
            },
        ),
    }
)
edit = st.fixed_dictionaries(
    {
        "type": st.just("edit"),
        "timestamp": timestamps,
        "details": _details({"file": st.text(max_size=60), "diff": texts}, {}),
    }
)
events = st.lists(reasoning | command | edit, max_size=8)

traces = st.fixed_dictionaries(
    {
        "developer_id": names,
        "repo_url": names,
        "bug_description": column_text,
        "events": events,
    },
    optional={
        "base_commit": st.from_regex(r"\A[0-9a-f]{7,40}\Z"),
        "branch": names,
        "metadata": st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    },
)
