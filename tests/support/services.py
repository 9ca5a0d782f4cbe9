"""Services the tests use (PostgreSQL) and how a missing one is reported."""

from __future__ import annotations

import os
import uuid

import pytest

PG_ADMIN_URL = os.environ.get(
    "DEBUGTRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def require(service: str, reason: str) -> None:
    """Skip (or, in CI, fail) because ``service`` is not available."""
    message = f"{service} is not available: {reason}"
    if os.environ.get("DEBUGTRACE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DEBUGTRACE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


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
