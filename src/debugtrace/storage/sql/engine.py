"""Engine setup: SQLite in WAL mode with explicit transactions, or any other SQLAlchemy URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

IMMEDIATE = "debugtrace_immediate"
"""Execution option: begin SQLite transactions with BEGIN IMMEDIATE (used for writes)."""


def _private_file(path: Path) -> None:
    """Create the database file (and the folders to it) readable by this user only.

    Its folder, when created here, is 0700; the file is 0600 (tightened if it exists wider).
    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode. The store holds every
    trace and token hash: nothing else on the host (test code running as ``nobody``, other
    users) may read it.
    """
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    if created:
        os.chmod(path.parent, 0o700)  # mkdir's mode would be masked by the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; a SQLite file (and its folder) is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        _private_file(Path(parsed.database).expanduser())
    # isolation_level=None hands transaction control to us (the pysqlite driver otherwise begins
    # lazily and can deadlock two writers that both started by reading).
    engine = create_engine(
        url, connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer. synchronous=NORMAL is the documented WAL pairing: a
        # commit survives an application crash; only an OS crash can roll back the last commits.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock up front so they queue on busy_timeout instead of failing.
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
