"""Built-in storage ``sql``: SQLAlchemy (embedded SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.registry import Register
    from debugtrace.storage import Storage


def _sql_storage(settings: Settings) -> Storage:
    from debugtrace.storage.sql.storage import (
        SQLStorage,  # imports SQLAlchemy only when the backend is used
    )

    return SQLStorage(settings.sqlalchemy_url(), limits=settings.limits)


@hookimpl
def register_storage(register: Register) -> None:
    """Register ``sql``."""
    register(
        "sql",
        _sql_storage,
        requires=("sqlalchemy", "alembic"),
        description="SQLAlchemy: SQLite file in the data dir by default; DEBUGTRACE_DATABASE_URL "
        "for PostgreSQL (extra `postgres`) or any other database",
        install_hint="pip install 'debugtrace-collector[postgres]' for PostgreSQL",
    )
