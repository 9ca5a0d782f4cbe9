"""SQLAlchemy implementation of :class:`debugtrace.storage.Storage`.

Events are rows keyed by (trace_id, seq). ``traces.event_count`` doubles as the sequence allocator:
an append bumps it by the batch size with ``UPDATE ... RETURNING`` in the same transaction as the
inserts, which row-locks the trace (PostgreSQL) or holds the write lock (SQLite), so concurrent
appenders get unique, gap-free numbers and a failed batch leaves no trace of itself.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, and_, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..config import Limits
from ..errors import InvalidTrace, StorageError, TraceNotFound
from ..model import Event, Trace, TraceStatus, utcnow
from ..results import TraceResult
from ..storage import Storage, TracePage, TraceQuery, TraceSummary, new_trace_id
from .engine import IMMEDIATE, make_engine
from .migrate import ensure_schema
from .schema import events, traces

_EVENTS = TypeAdapter(list[Event])
# Stored data was validated on the way in; re-reading it must not fail if limits were tightened since.
_TRUSTED = {"limits": Limits.model_construct(**{k: 2**62 for k in Limits.model_fields})}
_SUMMARY_COLUMNS = [
    traces.c.id,
    traces.c.developer_id,
    traces.c.repo_url,
    traces.c.bug_description,
    traces.c.base_commit,
    traces.c.branch,
    traces.c.status,
    traces.c.created_at,
    traces.c.updated_at,
    traces.c.event_count,
]


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we stored was UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class SQLStorage(Storage):
    """Traces in any SQLAlchemy database; the schema is created or upgraded on first use."""

    def __init__(self, url: str, limits: Limits | None = None) -> None:
        self.url = url
        self.limits = limits or Limits()
        try:
            self.engine = make_engine(url)
            ensure_schema(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot open the database {self._safe_url()}: {_reason(exc)}") from exc
        self._writer = self.engine.execution_options(**{IMMEDIATE: True})

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    # -- writes -------------------------------------------------------------------------------

    def create(self, trace: Trace) -> Trace:
        now = utcnow()
        tid = new_trace_id()
        created = trace.created_at or now
        stored = trace.model_copy(
            update={
                "id": tid,
                "status": "open",
                "created_at": created,
                "updated_at": now,
                "result": TraceResult(),
                "events": _numbered(trace.events, 1),
            }
        )
        self._check_count(len(stored.events))
        try:
            with self._writer.begin() as conn:
                conn.execute(
                    traces.insert().values(
                        id=tid,
                        developer_id=trace.developer_id,
                        repo_url=trace.repo_url,
                        bug_description=trace.bug_description,
                        base_commit=trace.base_commit,
                        branch=trace.branch,
                        status="open",
                        created_at=created,
                        updated_at=now,
                        event_count=len(stored.events),
                        metadata=json.dumps(trace.metadata, ensure_ascii=False),
                    )
                )
                self._insert_events(conn, tid, stored.events)
        except SQLAlchemyError as exc:
            raise StorageError(f"could not store the trace: {_reason(exc)}") from exc
        return stored

    def append_events(self, trace_id: str, batch: Sequence[Event]) -> list[Event]:
        if not batch:
            self.get_summary(trace_id)  # still report an unknown id
            return []
        n = len(batch)
        try:
            with self._writer.begin() as conn:
                last = conn.execute(
                    update(traces)
                    .where(traces.c.id == trace_id)
                    .values(event_count=traces.c.event_count + n, updated_at=utcnow())
                    .returning(traces.c.event_count)
                ).scalar()
                if last is None:
                    raise TraceNotFound(trace_id)
                self._check_count(last)  # raising rolls the whole batch back
                stored = _numbered(batch, last - n + 1)
                self._insert_events(conn, trace_id, stored)
        except SQLAlchemyError as exc:
            raise StorageError(f"could not append events: {_reason(exc)}") from exc
        return stored

    def _check_count(self, total: int) -> None:
        limit = self.limits.max_events_per_trace
        if total > limit:
            raise InvalidTrace(
                f"a trace may hold at most {limit} events (DEBUGTRACE_MAX_EVENTS_PER_TRACE); "
                f"this would make {total}"
            )

    @staticmethod
    def _insert_events(conn: Connection, trace_id: str, batch: Sequence[Event]) -> None:
        if not batch:
            return
        rows = [
            {
                "trace_id": trace_id,
                "seq": ev.seq,
                "type": ev.type,
                "timestamp": ev.timestamp,
                "details": ev.details.model_dump_json(exclude_unset=True),
            }
            for ev in batch
        ]
        conn.execute(events.insert(), rows)

    def set_status(
        self, trace_id: str, status: TraceStatus, *, expect: Collection[TraceStatus] = ()
    ) -> bool:
        cond = traces.c.id == trace_id
        if expect:
            cond = and_(cond, traces.c.status.in_(list(expect)))
        try:
            with self._writer.begin() as conn:
                changed = conn.execute(
                    update(traces).where(cond).values(status=status, updated_at=utcnow())
                ).rowcount
                if not changed and expect:
                    exists = conn.execute(select(traces.c.id).where(traces.c.id == trace_id))
                    if exists.first() is None:
                        raise TraceNotFound(trace_id)
                elif not changed:
                    raise TraceNotFound(trace_id)
        except SQLAlchemyError as exc:
            raise StorageError(f"could not update the trace: {_reason(exc)}") from exc
        return bool(changed)

    def save_result(self, trace_id: str, result: TraceResult) -> None:
        try:
            with self._writer.begin() as conn:
                changed = conn.execute(
                    update(traces)
                    .where(traces.c.id == trace_id)
                    .values(result=result.model_dump_json(), updated_at=utcnow())
                ).rowcount
        except SQLAlchemyError as exc:
            raise StorageError(f"could not store the result: {_reason(exc)}") from exc
        if not changed:
            raise TraceNotFound(trace_id)

    # -- reads --------------------------------------------------------------------------------

    def get(self, trace_id: str) -> Trace:
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(traces).where(traces.c.id == trace_id)).first()
                if row is None:
                    raise TraceNotFound(trace_id)
                rows = conn.execute(
                    select(events.c.seq, events.c.type, events.c.timestamp, events.c.details)
                    .where(events.c.trace_id == trace_id)
                    .order_by(events.c.seq)
                ).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read the trace: {_reason(exc)}") from exc
        evs = _EVENTS.validate_python(
            [
                {"seq": seq, "type": typ, "timestamp": _utc(ts), "details": json.loads(details)}
                for seq, typ, ts, details in rows
            ],
            context=_TRUSTED,
        )
        doc = _summary_dict(row)
        doc.pop("event_count")
        doc["metadata"] = json.loads(row.metadata)
        doc["result"] = json.loads(row.result) if row.result else {}
        trace = Trace.model_validate(doc, context=_TRUSTED)
        trace.events = evs
        return trace

    def get_summary(self, trace_id: str) -> TraceSummary:
        """The trace without its events; raises ``TraceNotFound``."""
        with self.engine.begin() as conn:
            row = conn.execute(select(*_SUMMARY_COLUMNS).where(traces.c.id == trace_id)).first()
        if row is None:
            raise TraceNotFound(trace_id)
        return TraceSummary.model_validate(_summary_dict(row))

    def list(self, query: TraceQuery) -> TracePage:
        conds = []
        if query.developer_id is not None:
            conds.append(traces.c.developer_id == query.developer_id)
        if query.repo_url is not None:
            conds.append(traces.c.repo_url == query.repo_url)
        if query.status is not None:
            conds.append(traces.c.status == query.status)
        if query.since is not None:
            conds.append(traces.c.created_at >= query.since)
        if query.cursor:
            conds.append(traces.c.id < query.cursor)
        stmt = (
            select(*_SUMMARY_COLUMNS)
            .where(and_(True, *conds))
            .order_by(traces.c.id.desc())
            .limit(query.limit + 1)
        )
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not list traces: {_reason(exc)}") from exc
        items = [TraceSummary.model_validate(_summary_dict(r)) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return TracePage(items=items, next_cursor=items[-1].id if more and items else None)

    def close(self) -> None:
        self.engine.dispose()


def _numbered(batch: Sequence[Event], first: int) -> list[Event]:
    return [ev.model_copy(update={"seq": first + i}) for i, ev in enumerate(batch)]


def _summary_dict(row: Row[Any]) -> dict[str, Any]:
    m = row._mapping
    doc = {c.name: m[c.name] for c in _SUMMARY_COLUMNS}
    doc["created_at"] = _utc(doc["created_at"])
    doc["updated_at"] = _utc(doc["updated_at"])
    return doc


def _reason(exc: SQLAlchemyError) -> str:
    # The driver's own message is the useful part; SQLAlchemy wraps it with SQL and parameters.
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip().splitlines()[0]
    return str(exc).splitlines()[0]
