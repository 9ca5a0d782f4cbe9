"""Schema migrations with Alembic: upgrade to head, creating a new database on first use."""

from __future__ import annotations

import zlib

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from debugtrace.errors import InvalidTrace, StorageError
from debugtrace.storage.sql.engine import IMMEDIATE
from debugtrace.storage.sql.schema import SCHEMA_REVISION

_LOCK_KEY = zlib.crc32(b"debugtrace-migrate")


def current_revision(conn: Connection) -> str | None:
    """The schema revision stored in the database, or None for an empty database."""
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:
        return None


def alembic_config(conn: Connection | None = None) -> object:
    """An Alembic ``Config`` for the migrations shipped in the package (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "debugtrace.storage.sql:migrations")
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest revision among the shipped migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[arg-type]
    return str(head)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; returns (revision before, revision after).

    Safe to call from several processes at once: the first one migrates while the others wait on a
    lock (SQLite's write lock, a PostgreSQL advisory lock) and then find nothing to do.
    """
    from alembic import command
    from alembic.util import CommandError

    try:
        with engine.connect().execution_options(**{IMMEDIATE: True}) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            before = current_revision(conn)
            if before != SCHEMA_REVISION or revision != "head":
                command.upgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
            after = current_revision(conn)
    except CommandError as exc:
        raise InvalidTrace(f"cannot migrate to {revision!r}: {exc}") from exc
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc)
        raise StorageError(
            f"cannot migrate the database {url}: {reason.strip()}".splitlines()[0]
        ) from exc
    return before, after


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema unless it is already at the revision this code expects."""
    with engine.connect() as conn:
        rev = current_revision(conn)
    if rev != SCHEMA_REVISION:
        upgrade(engine)
