"""Shared fixtures: hermetic settings, a SQLite file per test, a fresh PostgreSQL database.

Services the tests need but cannot find are skipped with a reason naming them; CI sets
``DEBUGTRACE_REQUIRE_SERVICES=1`` so a missing service fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings

PG_ADMIN_URL = os.environ.get(
    "DEBUGTRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def require(service: str, reason: str) -> None:
    """Skip (or, in CI, fail) because ``service`` is not available."""
    message = f"{service} is not available: {reason}"
    if os.environ.get("DEBUGTRACE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DEBUGTRACE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


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


def _pg_admin():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        require("PostgreSQL", "the psycopg driver is not installed (pip install -e '.[postgres]')")
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        require("PostgreSQL", f"cannot connect to {PG_ADMIN_URL}: {str(exc).strip()}")


def make_pg_database() -> tuple[str, str]:
    """Create an empty database; returns (its URL, its name)."""
    name = f"dt_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_pg_database(name: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
