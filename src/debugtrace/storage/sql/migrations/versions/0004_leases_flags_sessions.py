"""Job leases (owner, lease_expires_at), the store's persisted flags (``secured`` once a
developer token was issued) and dashboard sessions checked on every request.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("owner", sa.String(128)))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.create_table(
        "flags",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("developer_id", sa.String(255)),
        sa.Column("token_id", sa.String(64), sa.ForeignKey("tokens.id", ondelete="CASCADE")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_index("ix_sessions_token_id", "sessions", ["token_id"])
    # A store that already issued tokens stays secured whatever happens to their rows.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT id FROM tokens LIMIT 1")).first() is not None:
        flags = sa.table(
            "flags",
            sa.column("name", sa.String),
            sa.column("value", sa.Text),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        bind.execute(flags.insert().values(name="secured", value="1", created_at=datetime.now(UTC)))


def downgrade() -> None:
    op.drop_index("ix_sessions_token_id", "sessions")
    op.drop_index("ix_sessions_expires_at", "sessions")
    op.drop_table("sessions")
    op.drop_table("flags")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
