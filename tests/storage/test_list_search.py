"""Listing traces with the dashboard's search: text in the bug description or id, a part of the
repository URL, and newest first by ``created_at`` (keyset pages), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from debugtrace.storage import TraceQuery
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import sample_trace


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'traces.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = SQLStorage(url)
    yield s
    s.close()


def _all(storage: SQLStorage, limit: int = 3, **query: object) -> list[str]:
    """Every id the query lists, following the cursor ``limit`` at a time."""
    out: list[str] = []
    cursor = None
    while True:
        page = storage.list(TraceQuery(limit=limit, cursor=cursor, **query))  # type: ignore[arg-type]
        out += [s.id for s in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def test_text_matches_the_bug_description_or_the_id_in_any_case(storage: SQLStorage) -> None:
    bugs = ["Sort drops DUPLICATE keys", "timeout ignored for proxies", "duplicate rows in export"]
    ids = [str(storage.create(sample_trace("dana", bug_description=b)).id) for b in bugs]
    assert _all(storage, text="duplicate") == [ids[2], ids[0]]
    assert _all(storage, text="Proxies") == [ids[1]]
    assert _all(storage, text=ids[1][-10:]) == [ids[1]]  # a part of an id
    assert _all(storage, text="nothing like it") == []


def test_repo_contains_matches_any_part_of_the_url(storage: SQLStorage) -> None:
    repos = [
        "https://github.com/pallets/jinja.git",
        "https://github.com/psf/requests",
        "https://GitHub.com/Pallets/click",
    ]
    ids = [str(storage.create(sample_trace("erin", repo_url=r)).id) for r in repos]
    assert _all(storage, repo_contains="pallets") == [ids[2], ids[0]]
    assert _all(storage, repo_contains="psf/requests") == [ids[1]]
    assert _all(storage, repo_contains="pallets", text="divide") == [ids[2], ids[0]]
    assert _all(storage, repo_contains="pallets", developer_id="nobody") == []


def test_order_created_follows_created_at_across_pages_and_offsets(storage: SQLStorage) -> None:
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    # Stored in one order, created in another (imports keep when they were recorded), some at
    # the same instant written in other offsets, some in the same second (ties go by id).
    days = [5, 1, 9, 3, 3, 7, 2, 9, 0, 4]
    ids: list[str] = []
    created: dict[str, datetime] = {}
    for i, day in enumerate(days):
        when = start + timedelta(days=day)
        if i % 3 == 0:
            when = when.astimezone(timezone(timedelta(hours=-7)))
        tid = str(storage.create(sample_trace("fay", created_at=when, events=[])).id)
        ids.append(tid)
        created[tid] = when
    expected = sorted(ids, key=lambda t: (created[t], t), reverse=True)
    for limit in (1, 3, 4, 100):
        assert _all(storage, limit=limit, order="created") == expected, limit
    assert _all(storage, order="created", text="divide", developer_id="fay") == expected
    # The default order is still by id: the order of storage.
    assert _all(storage) == sorted(ids, reverse=True)
