"""SQL conditions for an export's :class:`~debugtrace.storage.ExportQuery`: the trace's own
columns, the verdict columns ``save_result`` writes, and cheap necessary conditions on the stored
result JSON. They only narrow: ``ExportQuery.accepts`` decides on the parsed result."""

from __future__ import annotations

import re
from typing import Any

from debugtrace.storage import ExportQuery
from debugtrace.storage.sql.schema import traces

__all__ = ["export_conditions"]


def export_conditions(query: ExportQuery) -> list[Any]:
    """SQL conditions for ``query``; the result filters only narrow, `accepts` decides."""
    conds: list[Any] = []
    if query.developer_id is not None:
        conds.append(traces.c.developer_id == query.developer_id)
    if query.since is not None:
        conds.append(traces.c.created_at >= query.since)
    # The verdict columns save_result writes (Verdict.of, as `accepts` computes it), and cheap
    # necessary conditions on the stored result JSON (written compact by pydantic), so traces
    # that cannot match are skipped in the database; `accepts` decides exactly.
    if query.validated_only:
        conds.append(traces.c.validated.is_(True))
    if query.min_score is not None:
        if not query.include_untested:  # a test verdict: validated true or false
            conds.append(traces.c.validated.is_not(None))
        if query.grader is None:  # the column holds the score of every grader together
            conds.append(traces.c.score >= query.min_score)
    if query.min_score is not None or query.grader is not None:
        conds.append(traces.c.result.like('%"grades":[{%'))
    if query.grader is not None and _PLAIN_NAME.fullmatch(query.grader):
        conds.append(traces.c.result.like(f'%"grader":"{query.grader}"%'))
    return conds


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:/@+-]{1,200}")
"""Grader names whose JSON form is themselves, so a LIKE on the stored result can find them."""
