"""A listing's cursor is a trace id: in Created order its ``created_at`` is looked up to resume
the page. An outside review found the lookup ignored whose listing it was, so a developer could
pass another developer's trace id as the cursor and learn that the trace exists (a page of her
own older traces) and roughly when it was made, which ``GET /api/traces/{id}`` hides with a 404.
A cursor outside the listing now gives what an unknown cursor gives: an empty page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from debugtrace.storage import TraceQuery
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import sample_trace

DAY = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'traces.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = SQLStorage(url)
    yield s
    s.close()


def test_another_developer_s_trace_id_is_no_cursor(storage: SQLStorage) -> None:
    alice = [
        str(storage.create(sample_trace("alice-cursor", created_at=DAY + timedelta(days=d))).id)
        for d in range(3)
    ]
    bob = str(storage.create(sample_trace("bob-cursor", created_at=DAY + timedelta(days=5))).id)

    def page(cursor: str) -> list[str]:
        query = TraceQuery(developer_id="alice-cursor", order="created", cursor=cursor)
        return [s.id for s in storage.list(query).items]

    # her own cursor resumes her listing...
    assert page(alice[2]) == [alice[1], alice[0]]
    # ...bob's id says nothing: the same empty page as an id that does not exist
    assert page(bob) == [] == page("f" * 24)
