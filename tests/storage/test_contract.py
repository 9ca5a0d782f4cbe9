"""The storage contract (debugtrace.testing) against every built-in backend and database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from debugtrace import Limits
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import StorageContract

SMALL = Limits(max_events_per_trace=200)


class TestSQLiteStorage(StorageContract):
    @pytest.fixture
    def storage(self, sqlite_url: str) -> Iterator[SQLStorage]:
        s = SQLStorage(sqlite_url, limits=SMALL)
        yield s
        s.close()


@pytest.mark.postgres
class TestPostgresStorage(StorageContract):
    @pytest.fixture
    def storage(self, pg_class_url: str) -> Iterator[SQLStorage]:
        s = SQLStorage(pg_class_url, limits=SMALL)
        yield s
        s.close()
