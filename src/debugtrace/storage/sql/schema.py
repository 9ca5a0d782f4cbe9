"""Table definitions; the migrations in ``storage/sql/migrations`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)

SCHEMA_REVISION = "0006"
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
    # Held-out tests (model.HeldOut) as JSON; NULL for none (and for traces stored before 0005).
    Column("held_out", Text),
    Column("result", Text),
    # The result's verdict (debugtrace.storage.Verdict), written with it by save_result, so
    # listings and aggregates need not parse the JSON: NULL = no test verdict / ungraded;
    # untested: the tests could not give a verdict ("could not test"; NULL = false).
    Column("validated", Boolean),
    Column("score", SmallInteger),
    Column("untested", Boolean),
    Index("ix_traces_developer_id", "developer_id", "id"),
    # The list in Created order, newest first (keyset on created_at, id).
    Index("ix_traces_created", "created_at", "id"),
    # The overview's counts (Storage.stats) read these two indexes, never the rows (which hold
    # the result JSON): by status and verdict, and (for one developer, or by week) the second.
    Index("ix_traces_status_verdict", "status", "validated", "score", "untested"),
    Index(
        "ix_traces_stats", "developer_id", "created_at", "status", "validated", "score", "untested"
    ),
)

# The list filtered by repository, newest first. PostgreSQL cannot index values over a third of
# a page (a repository URL may be longer), so there the index holds md5(repo_url) and the list
# query adds that condition.
Index("ix_traces_repo_url", traces.c.repo_url, traces.c.id).ddl_if(dialect="sqlite")
Index("ix_traces_repo_url_md5", func.md5(traces.c.repo_url), traces.c.id).ddl_if(
    dialect="postgresql"
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
    # The lease of a running job: who runs it and until when, renewed while it runs; only a job
    # whose lease expired is requeued (its runner died).
    Column("owner", String(128)),
    Column("lease_expires_at", DateTime(timezone=True)),
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

flags = Table(
    "flags",
    metadata,
    # Facts about the store that must outlive the rows they came from. "secured": a developer
    # token was issued once, so a server over this store always requires a token (deleting or
    # revoking every token never reopens it).
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    # sha256 of the session key (the key is only in the browser's signed cookie).
    Column("id", String(64), primary_key=True),
    Column("developer_id", String(255)),
    # The developer token the session was opened with: revoking (or deleting) it ends the session.
    Column("token_id", String(64), ForeignKey("tokens.id", ondelete="CASCADE")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_sessions_expires_at", "expires_at"),
    Index("ix_sessions_token_id", "token_id"),
)
