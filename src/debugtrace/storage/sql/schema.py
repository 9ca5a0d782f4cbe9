"""Table definitions; the migrations in ``storage/sql/migrations`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_REVISION = "0002"
"""Alembic head revision this code expects; checked cheaply on open without importing alembic."""

EVENT_TIME = DateTime(timezone=True).with_variant(BigInteger(), "sqlite")
"""Event times: timestamptz where the database has one; integer microseconds (UTC) on SQLite, which
has no date type and would otherwise need text formatting on the ingest hot path."""

metadata = MetaData()

traces = Table(
    "traces",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("developer_id", String(255), nullable=False),
    Column("repo_url", Text, nullable=False),
    Column("bug_description", Text, nullable=False),
    Column("base_commit", Text),
    Column("branch", Text),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Also the sequence allocator: an append bumps it by the batch size in the same transaction.
    Column("event_count", Integer, nullable=False, server_default="0"),
    Column("metadata", Text, nullable=False, server_default="{}"),
    Column("result", Text),
    Index("ix_traces_developer_id", "developer_id", "id"),
    Index("ix_traces_status", "status"),
)

events = Table(
    "events",
    metadata,
    Column(
        "trace_id",
        String(64),
        ForeignKey("traces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", String(16), nullable=False),
    Column("timestamp", EVENT_TIME, nullable=False),
    # The details object as JSON text, byte for byte what the model dumps (key order kept).
    Column("details", Text, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("trace_id", String(64), ForeignKey("traces.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("options", Text, nullable=False, server_default="{}"),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_jobs_trace_id", "trace_id"),
    Index("ix_jobs_state", "state"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    # sha256 of the token: tokens are random and long, so a fast hash is enough and a leaked
    # database does not leak usable tokens.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("developer_id", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
