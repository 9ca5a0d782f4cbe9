"""The verdict of each trace's result as columns (validated, score), filled from the stored
results; covering indexes for the overview's counts (``ix_traces_status`` becomes
``ix_traces_status_verdict``) and an index for the list filtered by repository.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pydantic import ValidationError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column("traces", sa.Column("validated", sa.Boolean))
    op.add_column("traces", sa.Column("score", sa.SmallInteger))
    _fill_verdicts()
    op.drop_index("ix_traces_status", "traces")
    op.create_index("ix_traces_status_verdict", "traces", ["status", "validated", "score"])
    op.create_index(
        "ix_traces_stats",
        "traces",
        ["developer_id", "created_at", "status", "validated", "score"],
    )
    if op.get_bind().dialect.name == "postgresql":
        # A btree entry may not exceed a third of a page, and a repository URL may be longer.
        op.create_index("ix_traces_repo_url_md5", "traces", [sa.text("md5(repo_url)"), "id"])
    elif op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_traces_repo_url", "traces", ["repo_url", "id"])


def _fill_verdicts() -> None:
    """Compute each stored result's verdict with the model's own code (``Verdict.of``, i.e.
    ``TraceResult.score``), a batch of rows at a time."""
    from debugtrace.results import TraceResult
    from debugtrace.storage import Verdict

    bind = op.get_bind()
    traces = sa.table(
        "traces",
        sa.column("id", sa.String),
        sa.column("result", sa.Text),
        sa.column("validated", sa.Boolean),
        sa.column("score", sa.SmallInteger),
    )
    fill = (
        sa.update(traces)
        .where(traces.c.id == sa.bindparam("b_id"))
        .values(validated=sa.bindparam("b_validated"), score=sa.bindparam("b_score"))
    )
    last = ""
    while True:
        rows = bind.execute(
            sa.select(traces.c.id, traces.c.result)
            .where(traces.c.id > last, traces.c.result.is_not(None))
            .order_by(traces.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        values = []
        for row in rows:
            try:
                verdict = Verdict.of(TraceResult.model_validate_json(row.result))
            except ValidationError:  # not written by save_result: left without a verdict
                continue
            if verdict.validated is not None or verdict.score is not None:
                values.append(
                    {"b_id": row.id, "b_validated": verdict.validated, "b_score": verdict.score}
                )
        if values:
            bind.execute(fill, values)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_traces_repo_url_md5", "traces")
    elif bind.dialect.name == "sqlite":
        op.drop_index("ix_traces_repo_url", "traces")
    op.drop_index("ix_traces_stats", "traces")
    op.drop_index("ix_traces_status_verdict", "traces")
    op.create_index("ix_traces_status", "traces", ["status"])
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("score")
        batch.drop_column("validated")
