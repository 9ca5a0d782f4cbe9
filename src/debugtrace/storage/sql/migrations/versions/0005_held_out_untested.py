"""Held-out tests on traces (``held_out``, JSON) and the "could not test" part of the verdict
(``untested``); the verdict columns are filled again from the stored results with today's
``Verdict.of``; the overview's covering indexes gain ``untested``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pydantic import ValidationError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 1000
_OLD_STATUS = ["status", "validated", "score"]
_OLD_STATS = ["developer_id", "created_at", "status", "validated", "score"]


def upgrade() -> None:
    op.add_column("traces", sa.Column("held_out", sa.Text))
    op.add_column("traces", sa.Column("untested", sa.Boolean))
    _fill_verdicts()
    op.drop_index("ix_traces_status_verdict", "traces")
    op.drop_index("ix_traces_stats", "traces")
    op.create_index("ix_traces_status_verdict", "traces", [*_OLD_STATUS, "untested"])
    op.create_index("ix_traces_stats", "traces", [*_OLD_STATS, "untested"])


def _fill_verdicts() -> None:
    """Compute each stored result's verdict with the model's own code (``Verdict.of``: a tests
    stage that failed or errored without a validation could not test), a batch of rows at a
    time."""
    from debugtrace.results import TraceResult
    from debugtrace.storage import Verdict

    bind = op.get_bind()
    traces = sa.table(
        "traces",
        sa.column("id", sa.String),
        sa.column("result", sa.Text),
        sa.column("validated", sa.Boolean),
        sa.column("score", sa.SmallInteger),
        sa.column("untested", sa.Boolean),
    )
    fill = (
        sa.update(traces)
        .where(traces.c.id == sa.bindparam("b_id"))
        .values(
            validated=sa.bindparam("b_validated"),
            score=sa.bindparam("b_score"),
            untested=sa.bindparam("b_untested"),
        )
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
            except ValidationError:  # not written by save_result: left as it is
                continue
            values.append(
                {
                    "b_id": row.id,
                    "b_validated": verdict.validated,
                    "b_score": verdict.score,
                    "b_untested": verdict.untested or None,
                }
            )
        if values:
            bind.execute(fill, values)


def downgrade() -> None:
    op.drop_index("ix_traces_stats", "traces")
    op.drop_index("ix_traces_status_verdict", "traces")
    op.create_index("ix_traces_status_verdict", "traces", _OLD_STATUS)
    op.create_index("ix_traces_stats", "traces", _OLD_STATS)
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("untested")
        batch.drop_column("held_out")
