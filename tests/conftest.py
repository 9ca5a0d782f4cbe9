"""Shared fixtures: hermetic settings, a SQLite file per test, a fresh PostgreSQL database.

The suite runs in parallel (``python -m pytest -n auto``, pytest-xdist): every test has its own
SQLite file, PostgreSQL database and data dir; workers share one Docker engine, which the last of
them stops (tests/support/docker_engine.py).

Services the tests need but cannot find are skipped with a reason naming them; CI sets
``DEBUGTRACE_REQUIRE_SERVICES=1`` so a missing service fails the run instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.services import drop_pg_database, make_pg_database


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Installed plugins and the developer's own settings must not leak into tests.
    for key in list(os.environ):
        if key.startswith("DEBUGTRACE_") and key not in (
            "DEBUGTRACE_REQUIRE_SERVICES",
            "DEBUGTRACE_TEST_POSTGRES_URL",
        ):
            monkeypatch.delenv(key)
    # A developer's own API key must not send test traces to a real model.
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DEBUGTRACE_LOAD_PLUGINS", "")
    monkeypatch.setenv("DEBUGTRACE_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of the test's own."""
    return f"sqlite:///{tmp_path / 'traces.db'}"


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, load_plugins="")


@pytest.fixture
def collector(settings: Settings) -> Iterator[Collector]:
    with Collector(settings=settings) as c:
        yield c


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local service, dropped afterwards."""
    url, name = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="class")
def pg_class_url() -> Iterator[str]:
    """One fresh PostgreSQL database shared by the tests of a class."""
    url, name = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)
