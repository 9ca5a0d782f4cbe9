"""Initial schema: traces and their events as rows.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("developer_id", sa.String(255), nullable=False),
        sa.Column("repo_url", sa.Text, nullable=False),
        sa.Column("bug_description", sa.Text, nullable=False),
        sa.Column("base_commit", sa.Text),
        sa.Column("branch", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("metadata", sa.Text, nullable=False, server_default="{}"),
        sa.Column("result", sa.Text),
    )
    op.create_index("ix_traces_developer_id", "traces", ["developer_id", "id"])
    op.create_index("ix_traces_status", "traces", ["status"])
    op.create_table(
        "events",
        sa.Column(
            "trace_id",
            sa.String(64),
            sa.ForeignKey("traces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column(
            "timestamp",
            sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite"),
            nullable=False,
        ),
        sa.Column("details", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events")
    op.drop_index("ix_traces_status", "traces")
    op.drop_index("ix_traces_developer_id", "traces")
    op.drop_table("traces")
