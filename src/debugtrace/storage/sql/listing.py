"""SQL conditions and order for a listing's :class:`~debugtrace.storage.TraceQuery`.

The text filters come from people (the dashboard's search box): they are matched as literal
substrings — ``LIKE`` with its wildcards ``%`` and ``_`` and the escape character itself escaped —
case-insensitively (``ILIKE`` on PostgreSQL, ``lower(...) LIKE lower(...)`` on SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from debugtrace.storage import TraceQuery
from debugtrace.storage.sql.schema import traces

__all__ = ["ESCAPE", "contains_pattern", "list_conditions", "list_order"]

ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, every character of it literal."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def list_conditions(query: TraceQuery) -> list[Any]:
    """The conditions of ``query``'s text filters and of its cursor in its order (the trace's
    own columns: developer, repository, status, since are the caller's)."""
    conds: list[Any] = []
    if query.text:
        pattern = contains_pattern(query.text)
        conds.append(
            or_(
                traces.c.bug_description.ilike(pattern, escape=ESCAPE),
                traces.c.id.ilike(pattern, escape=ESCAPE),
            )
        )
    if query.repo_contains:
        conds.append(traces.c.repo_url.ilike(contains_pattern(query.repo_contains), escape=ESCAPE))
    if query.cursor:
        if query.order == "created":  # keyset on (created_at, id), from the cursor's own row
            row = select(traces.c.created_at).where(traces.c.id == query.cursor)
            if query.developer_id is not None:
                # only a cursor from this listing: another developer's trace id would say that
                # trace exists, and when (an unknown cursor gives an empty page)
                row = row.where(traces.c.developer_id == query.developer_id)
            at = row.scalar_subquery()
            conds.append(
                or_(
                    traces.c.created_at < at,
                    and_(traces.c.created_at == at, traces.c.id < query.cursor),
                )
            )
        else:
            conds.append(traces.c.id < query.cursor)
    return conds


def list_order(query: TraceQuery) -> list[Any]:
    """ORDER BY of the listing: newest first, by id or by creation time (ties by id)."""
    if query.order == "created":
        return [traces.c.created_at.desc(), traces.c.id.desc()]
    return [traces.c.id.desc()]
