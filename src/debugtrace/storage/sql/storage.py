"""SQLAlchemy implementation of :class:`debugtrace.storage.Storage`.

Events are rows keyed by (trace_id, seq). ``traces.event_count`` doubles as the sequence allocator:
an append bumps it by the batch size with ``UPDATE ... RETURNING`` in the same transaction as the
inserts, which row-locks the trace (PostgreSQL) or holds the write lock (SQLite), so concurrent
appenders get unique, gap-free numbers and a failed batch leaves no trace of itself.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Row, and_, cast, delete, func, or_, select, true, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from debugtrace.config import Limits
from debugtrace.errors import (
    AppendConflict,
    ErrorDetail,
    InvalidTrace,
    JobNotFound,
    StorageError,
    TraceIdConflict,
    TraceNotFound,
)
from debugtrace.jobs import LEASE_S, Job, new_owner
from debugtrace.model import Event, Trace, TraceStatus, utcnow
from debugtrace.results import TraceResult
from debugtrace.storage import (
    ExportQuery,
    SessionInfo,
    Storage,
    TokenInfo,
    TracePage,
    TraceQuery,
    TraceStats,
    TraceSummary,
    Verdict,
    is_id,
    new_trace_id,
    same_events,
    same_submission,
)
from debugtrace.storage.sql import rows as conv
from debugtrace.storage.sql.engine import IMMEDIATE, make_engine
from debugtrace.storage.sql.filters import export_conditions
from debugtrace.storage.sql.listing import list_conditions, list_order
from debugtrace.storage.sql.migrate import ensure_schema
from debugtrace.storage.sql.schema import events, flags, jobs, sessions, tokens, traces

_Picked = list[tuple[Row[Any], TraceResult]]
"""Trace rows chosen for an export, with their parsed results (``list`` is a method below)."""


class SQLStorage(Storage):
    """Traces in any SQLAlchemy database; the schema is created or upgraded on first use."""

    def __init__(self, url: str, limits: Limits | None = None) -> None:
        self.url = url
        self.limits = limits or Limits()
        try:
            self.engine = make_engine(url)
            ensure_schema(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot open the database {self._safe_url()}: {_reason(exc)}"
            ) from exc
        except ImportError as exc:
            hint = " (pip install 'debugtrace-collector[postgres]')" if "postgres" in url else ""
            raise StorageError(
                f"the database driver for {self._safe_url()} is not installed: {exc}{hint}"
            ) from exc
        self._writer = self.engine.execution_options(**{IMMEDIATE: True})
        p = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._sql_bump = (
            f"UPDATE traces SET event_count = event_count + {p}, updated_at = {p} "
            f"WHERE id = {p} RETURNING event_count"
        )
        self._sql_bump_at = (
            f"UPDATE traces SET event_count = event_count + {p}, updated_at = {p} "
            f"WHERE id = {p} AND event_count = {p} RETURNING event_count"
        )
        self._sql_insert = (
            f"INSERT INTO events (trace_id, seq, type, timestamp, details) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})"
        )
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._sql_secured = select(flags.c.name).where(flags.c.name == "secured")
        self._db_errors = (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error)

    def _column_time(self, value: datetime) -> datetime | str:
        """A DateTime column value for the driver (SQLite: SQLAlchemy's naive-UTC text form)."""
        if self._sqlite:
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        return value

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    # -- writes -------------------------------------------------------------------------------

    def create(self, trace: Trace) -> Trace:
        try:
            return self._insert(trace, new_trace_id())
        except IntegrityError as exc:  # an id taken twice: new_trace_id never repeats
            raise StorageError(f"could not store the trace: {_reason(exc)}") from exc

    def create_with_id(self, trace: Trace, trace_id: str) -> tuple[Trace, bool]:
        if not is_id(trace_id):
            raise InvalidTrace([ErrorDetail(("id",), "must be 24 lowercase hex digits")])
        try:
            return self._insert(trace, trace_id), True
        except IntegrityError:
            # The primary key is taken (a concurrent insert of the same id waited for the
            # first one's commit): a repeat of that submission, or a conflict.
            pass
        try:
            stored = self.get(trace_id)
        except TraceNotFound:  # the conflicting row went away meanwhile: not an id clash
            raise StorageError("could not store the trace: a constraint failed") from None
        if not same_submission(stored, trace):
            raise TraceIdConflict(trace_id)
        return stored, False

    def _insert(self, trace: Trace, tid: str) -> Trace:
        """Insert ``trace`` under ``tid``; raises ``IntegrityError`` when the id is taken."""
        now = utcnow()
        created = trace.created_at or now
        stored = trace.model_copy(
            update={
                "id": tid,
                "status": "open",
                "created_at": created,
                "updated_at": now,
                "result": TraceResult(),
                "events": [ev.model_copy() for ev in trace.events],
            }
        )
        _number(stored.events, 1)
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
                        held_out=(
                            trace.held_out.model_dump_json() if trace.held_out is not None else None
                        ),
                    )
                )
                if stored.events:
                    conn.exec_driver_sql(self._sql_insert, self._event_rows(tid, stored.events))
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StorageError(f"could not store the trace: {_reason(exc)}") from exc
        return stored

    def append_events(self, trace_id: str, batch: Sequence[Event]) -> list[Event]:
        """Append ``batch``, setting ``seq`` on the given event objects; returns them."""
        _known_trace(trace_id)
        if not batch:
            self.get_summary(trace_id)  # still report an unknown id
            return []
        n = len(batch)
        try:
            with self._driver_transaction() as cur:
                cur.execute(self._sql_bump, (n, self._column_time(utcnow()), trace_id))
                row = cur.fetchone()
                if row is None:
                    raise TraceNotFound(trace_id)
                self._check_count(row[0])  # raising rolls the whole batch back
                _number(batch, row[0] - n + 1)
                cur.executemany(self._sql_insert, self._event_rows(trace_id, batch))
        except self._db_errors as exc:
            raise StorageError(f"could not append events: {_reason(exc)}") from exc
        return list(batch)

    def append_events_at(
        self, trace_id: str, batch: Sequence[Event], after: int
    ) -> tuple[list[Event], bool]:
        """Conditional on ``event_count = after`` in the same ``UPDATE ... RETURNING`` that
        allocates the numbers (atomic: the row lock, or SQLite's write lock); a miss changes
        nothing, then the stored events at that place tell a repeat from a conflict."""
        _known_trace(trace_id)
        n = len(batch)
        applied = False
        if n:
            try:
                with self._driver_transaction() as cur:
                    now = self._column_time(utcnow())
                    cur.execute(self._sql_bump_at, (n, now, trace_id, after))
                    row = cur.fetchone()
                    if row is not None:
                        self._check_count(row[0])  # raising rolls the whole batch back
                        _number(batch, after + 1)
                        cur.executemany(self._sql_insert, self._event_rows(trace_id, batch))
                        applied = True
            except self._db_errors as exc:
                raise StorageError(f"could not append events: {_reason(exc)}") from exc
        if applied:
            return list(batch), True
        count = self.get_summary(trace_id).event_count  # TraceNotFound for an unknown id
        if after + n <= count:
            stored = self._events_between(trace_id, after + 1, after + n)
            if same_events(stored, batch):
                return stored, False
        raise AppendConflict(trace_id, after, count)

    def _events_between(self, trace_id: str, first: int, last: int) -> list[Event]:
        """The trace's events numbered ``first`` to ``last``."""
        if last < first:
            return []
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(events.c.seq, events.c.type, events.c.timestamp, events.c.details)
                    .where(events.c.trace_id == trace_id, events.c.seq.between(first, last))
                    .order_by(events.c.seq)
                ).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read the trace: {_reason(exc)}") from exc
        return conv.events_from_rows(rows)

    @contextmanager
    def _driver_transaction(self) -> Iterator[Any]:
        """A write transaction on the pooled driver connection, for the hot append path.

        The statements are fixed, and SQLAlchemy's per-call machinery costs more than the inserts
        themselves, so this goes straight to the DBAPI cursor (same pool, same pragmas).
        """
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            if self._sqlite:
                cur.execute("BEGIN IMMEDIATE")  # take the write lock first (see engine.py)
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            cur.close()
        finally:
            conn.close()  # back to the pool

    def _check_count(self, total: int) -> None:
        limit = self.limits.max_events_per_trace
        if total > limit:
            raise InvalidTrace(
                f"a trace may hold at most {limit} events (DEBUGTRACE_MAX_EVENTS_PER_TRACE); "
                f"this would make {total}"
            )

    def _event_rows(self, trace_id: str, batch: Sequence[Event]) -> list[tuple[Any, ...]]:
        # Runs per event on the ingest hot path, hence the inlined conversions.
        if self._sqlite:
            epoch, us = conv.EPOCH, conv.MICROSECOND
            # conv.details_json inlined: one Python call less per event.
            return [
                (
                    trace_id,
                    ev.seq,
                    ev.type,
                    (ev.timestamp - epoch) // us,
                    ev.details.__pydantic_serializer__.to_json(ev.details).decode(),
                )
                for ev in batch
            ]
        dump = conv.details_json
        return [(trace_id, ev.seq, ev.type, ev.timestamp, dump(ev.details)) for ev in batch]

    def set_status(
        self, trace_id: str, status: TraceStatus, *, expect: Collection[TraceStatus] = ()
    ) -> bool:
        _known_trace(trace_id)
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
        _known_trace(trace_id)
        verdict = Verdict.of(result)  # kept next to the JSON for listings and counts
        try:
            with self._writer.begin() as conn:
                changed = conn.execute(
                    update(traces)
                    .where(traces.c.id == trace_id)
                    .values(
                        result=result.model_dump_json(),
                        validated=verdict.validated,
                        score=verdict.score,
                        untested=verdict.untested or None,
                        updated_at=utcnow(),
                    )
                ).rowcount
        except SQLAlchemyError as exc:
            raise StorageError(f"could not store the result: {_reason(exc)}") from exc
        if not changed:
            raise TraceNotFound(trace_id)

    # -- reads --------------------------------------------------------------------------------

    def get(self, trace_id: str) -> Trace:
        _known_trace(trace_id)
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
        return conv.trace_from_row(
            row, json.loads(row.result) if row.result else {}, conv.events_from_rows(rows)
        )

    def get_summary(self, trace_id: str) -> TraceSummary:
        """The trace's row without its events; raises ``TraceNotFound``."""
        _known_trace(trace_id)
        try:
            with self.engine.begin() as conn:
                stmt = select(*conv.SUMMARY_COLUMNS).where(traces.c.id == trace_id)
                row = conn.execute(stmt).first()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read the trace: {_reason(exc)}") from exc
        if row is None:
            raise TraceNotFound(trace_id)
        return TraceSummary.model_validate(conv.summary_dict(row))

    def list(self, query: TraceQuery) -> TracePage:
        searched = (query.developer_id, query.repo_url, query.text, query.repo_contains)
        if not all(_storable(v) for v in searched):
            return TracePage(items=[])  # no stored trace holds what a database cannot store
        conds = []
        if query.developer_id is not None:
            conds.append(traces.c.developer_id == query.developer_id)
        if query.repo_url is not None:
            conds.append(traces.c.repo_url == query.repo_url)
            if self.engine.dialect.name == "postgresql":  # what ix_traces_repo_url_md5 holds
                conds.append(func.md5(traces.c.repo_url) == func.md5(query.repo_url))
        if query.status is not None:
            conds.append(traces.c.status == query.status)
        if query.since is not None:
            conds.append(traces.c.created_at >= query.since)
        conds += list_conditions(query)  # text filters, the cursor in the query's order
        stmt = (
            select(*conv.SUMMARY_COLUMNS)
            .where(and_(true(), *conds))
            .order_by(*list_order(query))
            .limit(query.limit + 1)
        )
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not list traces: {_reason(exc)}") from exc
        items = [TraceSummary.model_validate(conv.summary_dict(r)) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return TracePage(items=items, next_cursor=items[-1].id if more and items else None)

    VERDICTS_PER_QUERY = 500
    """Ids per ``IN (...)`` list when reading verdicts."""

    def verdicts(self, trace_ids: Collection[str]) -> dict[str, Verdict]:
        """Read from the ``validated``, ``score`` and ``untested`` columns (``save_result``
        writes them with the result), one query per :attr:`VERDICTS_PER_QUERY` ids."""
        ids = [i for i in dict.fromkeys(trace_ids) if _storable(i)]
        out: dict[str, Verdict] = {}
        try:
            with self.engine.begin() as conn:
                for i in range(0, len(ids), self.VERDICTS_PER_QUERY):
                    chunk = ids[i : i + self.VERDICTS_PER_QUERY]
                    rows = conn.execute(
                        select(
                            traces.c.id, traces.c.validated, traces.c.score, traces.c.untested
                        ).where(traces.c.id.in_(chunk))
                    )
                    for tid, validated, score, untested in rows:
                        out[tid] = Verdict(
                            validated=None if validated is None else bool(validated),
                            score=score,
                            untested=bool(untested),
                        )
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read results: {_reason(exc)}") from exc
        return out

    def stats(self, developer_id: str | None = None) -> TraceStats:
        """Two ``GROUP BY`` queries, by status and verdict and by developer and week, that read
        only the indexes ``ix_traces_status_verdict`` and ``ix_traces_stats`` (see schema.py)."""
        if not _storable(developer_id):
            return TraceStats()
        week = self._week_of_created_at()
        if week is None:  # a database without a known week function: count in Python
            return super().stats(developer_id)
        cond = traces.c.developer_id == developer_id if developer_id is not None else true()
        verdict = (traces.c.status, traces.c.validated, traces.c.score, traces.c.untested)
        by_verdict = select(*verdict, func.count()).where(cond).group_by(*verdict)
        by_week = (
            select(traces.c.developer_id, week, func.count())
            .where(cond)
            .group_by(traces.c.developer_id, week)
        )
        try:
            with self.engine.begin() as conn:
                verdicts: dict[tuple[Any, bool | None, int | None, bool], int] = {}
                for status, validated, score, untested, n in conn.execute(by_verdict):
                    # untested NULL and false both mean "tested, or never tried": one group.
                    key = (
                        status,
                        None if validated is None else bool(validated),
                        score,
                        bool(untested),
                    )
                    verdicts[key] = verdicts.get(key, 0) + n
                weeks = {(dev, conv.as_date(day)): n for dev, day, n in conn.execute(by_week)}
        except SQLAlchemyError as exc:
            raise StorageError(f"could not count traces: {_reason(exc)}") from exc
        return TraceStats.of(verdicts, weeks)

    def _week_of_created_at(self) -> Any:
        """SQL for the Monday (UTC) of the week of ``created_at``, or None for other databases."""
        created = traces.c.created_at
        if self._sqlite:  # stored as UTC text; 'weekday 0' goes on to Sunday, then back 6 days
            return func.date(created, "weekday 0", "-6 days")
        if self.engine.dialect.name == "postgresql":
            return cast(func.date_trunc("week", func.timezone("UTC", created)), Date)
        return None

    EXPORT_EVENTS_PER_READ = 5000
    """Traces of a page are read with one events query per this many events (by event_count)."""

    def iter_traces(self, query: ExportQuery) -> Iterator[Trace]:
        """Keyset pages of ``query.page_size`` trace rows (``id < last``, newest first), each read
        in a short transaction of its own; then one events query per group of traces holding up to
        :attr:`EXPORT_EVENTS_PER_READ` events. Nothing is held open while the caller works."""
        conds = export_conditions(query)
        last: str | None = None
        while True:
            stmt = select(traces).where(and_(true(), *conds))
            if last is not None:
                stmt = stmt.where(traces.c.id < last)
            stmt = stmt.order_by(traces.c.id.desc()).limit(query.page_size)
            try:
                with self.engine.begin() as conn:
                    page = conn.execute(stmt).all()
            except SQLAlchemyError as exc:
                raise StorageError(f"could not read traces: {_reason(exc)}") from exc
            if not page:
                return
            last = page[-1].id
            chosen: _Picked = []
            for row in page:
                result = (
                    TraceResult.model_validate_json(row.result) if row.result else TraceResult()
                )
                if query.accepts(result):
                    chosen.append((row, result))
            for group in _by_event_count(chosen, self.EXPORT_EVENTS_PER_READ):
                yield from self._with_events(group)
            if len(page) < query.page_size:
                return

    def _with_events(self, group: _Picked) -> Iterator[Trace]:
        ids = [row.id for row, _ in group]
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(
                        events.c.trace_id,
                        events.c.seq,
                        events.c.type,
                        events.c.timestamp,
                        events.c.details,
                    )
                    .where(events.c.trace_id.in_(ids))
                    .order_by(events.c.trace_id, events.c.seq)
                ).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read events: {_reason(exc)}") from exc
        per_trace: dict[str, list[Any]] = {}
        for r in rows:
            per_trace.setdefault(r[0], []).append(r[1:])
        del rows
        for row, result in group:
            trace = conv.trace_from_row(row, {}, conv.events_from_rows(per_trace.pop(row.id, [])))
            trace.result = result
            yield trace

    def count_traces(self, query: ExportQuery) -> int | None:
        """Exact when only developer and since filter (one ``count(*)``); None otherwise."""
        if query.filters_results:
            return None
        stmt = select(func.count()).select_from(traces)
        stmt = stmt.where(and_(true(), *export_conditions(query)))
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(stmt).scalar_one())
        except SQLAlchemyError as exc:
            raise StorageError(f"could not count traces: {_reason(exc)}") from exc

    # -- jobs -----------------------------------------------------------------------------------

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Turn a database failure inside the block into ``StorageError`` (HTTP 503)."""
        try:
            yield
        except self._db_errors as exc:
            raise StorageError(f"{what}: {_reason(exc)}") from exc

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        from debugtrace.errors import JobConflict

        _known_trace(trace_id)
        now = utcnow()
        job_id = new_trace_id()
        with self._failing("could not queue the job"), self._writer.begin() as conn:
            # The trace's status is the lock: only one finalize can be queued or running.
            moved = conn.execute(
                update(traces)
                .where(traces.c.id == trace_id, traces.c.status.in_(["open", "finalized"]))
                .values(status="queued", updated_at=now)
            ).rowcount
            if not moved:
                row = conn.execute(select(traces.c.status).where(traces.c.id == trace_id)).first()
                if row is None:
                    raise TraceNotFound(trace_id)
                if kind == "finalize":
                    raise JobConflict(f"trace {trace_id} is already being finalized ({row.status})")
                # A re-grade may run next to nothing else; leave the status alone.
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    trace_id=trace_id,
                    kind=kind,
                    state="queued",
                    attempts=0,
                    options=json.dumps(options),
                    created_at=now,
                    updated_at=now,
                )
            )
        return Job(
            id=job_id,
            trace_id=trace_id,
            kind=kind,
            state="queued",
            options=options,
            created_at=now,
            updated_at=now,
        )

    def claim_job(
        self, job_id: str, owner: str | None = None, lease_s: float = LEASE_S
    ) -> Job | None:
        if not _storable(job_id) or len(job_id) > 64:
            return None
        now = utcnow()
        with self._failing("could not claim the job"), self._writer.begin() as conn:
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "queued")
                .values(
                    state="running",
                    attempts=jobs.c.attempts + 1,
                    owner=owner or new_owner(),
                    lease_expires_at=now + timedelta(seconds=lease_s),
                    updated_at=now,
                )
            ).rowcount
        return self.get_job(job_id) if claimed else None

    def renew_job(self, job_id: str, owner: str, lease_s: float = LEASE_S) -> bool:
        now = utcnow()
        with self._failing("could not renew the job's lease"), self._writer.begin() as conn:
            renewed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "running", jobs.c.owner == owner)
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            ).rowcount
        return bool(renewed)

    def finish_job(
        self, job_id: str, state: str, error: str | None = None, owner: str | None = None
    ) -> Job:
        if not _storable(job_id):
            raise JobNotFound(job_id)
        now = utcnow()
        cond = [jobs.c.id == job_id]
        if owner is not None:  # fenced: only the runner that still holds it
            cond += [jobs.c.state == "running", jobs.c.owner == owner]
        with self._failing("could not record the job's end"), self._writer.begin() as conn:
            changed = conn.execute(
                update(jobs)
                .where(*cond)
                .values(state=state, error=error, lease_expires_at=None, updated_at=now)
            ).rowcount
            if changed:
                # A failed finalize must not leave its trace locked as queued/finalizing.
                trace_id = conn.execute(select(jobs.c.trace_id).where(jobs.c.id == job_id)).scalar()
                conn.execute(
                    update(traces)
                    .where(traces.c.id == trace_id, traces.c.status.in_(["queued", "finalizing"]))
                    .values(status="finalized" if state == "done" else "open", updated_at=now)
                )
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> Job:
        if not _storable(job_id) or len(job_id) > 64:
            raise JobNotFound(job_id)
        with self._failing("could not read the job"), self.engine.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return conv.job_from_row(row)

    def live_job(self, trace_id: str) -> Job | None:
        if not _storable(trace_id):
            return None
        holds = or_(
            jobs.c.state == "queued",
            and_(jobs.c.state == "running", jobs.c.lease_expires_at > utcnow()),
        )
        stmt = (
            select(jobs)
            .where(jobs.c.trace_id == trace_id, holds)
            .order_by(jobs.c.created_at.desc())
            .limit(1)
        )
        with self._failing("could not read the trace's jobs"), self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return conv.job_from_row(row) if row is not None else None

    def requeue_jobs(
        self, gone: Callable[[str], bool] | None = None, *, all_queued: bool = True
    ) -> Sequence[Job]:
        now = utcnow()
        expired = or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now)
        requeued: builtins.list[str] = []
        with self._failing("could not requeue jobs"), self._writer.begin() as conn:
            running = conn.execute(
                select(jobs.c.id, jobs.c.trace_id, jobs.c.kind, jobs.c.owner, expired.label("x"))
                .where(jobs.c.state == "running")
                .order_by(jobs.c.created_at)
            ).all()
            for job_id, trace_id, kind, owner, lapsed in running:
                dead = gone is not None and owner is not None and gone(owner)
                if not (lapsed or dead):
                    continue  # its runner renews the lease: leave it be
                # Compare-and-set on the owner seen: two servers starting together requeue a
                # job once, and a runner that renewed meanwhile keeps it.
                cond = [jobs.c.id == job_id, jobs.c.state == "running"]
                cond.append(jobs.c.owner.is_(None) if owner is None else jobs.c.owner == owner)
                if not dead:
                    cond.append(expired)
                moved = conn.execute(
                    update(jobs)
                    .where(*cond)
                    .values(state="queued", owner=None, lease_expires_at=None, updated_at=now)
                ).rowcount
                if not moved:
                    continue
                requeued.append(job_id)
                if kind == "finalize":
                    # The dead runner's lock on the trace passes back to the queued job, so the
                    # next run starts through the ordinary lock (never with force).
                    conn.execute(
                        update(traces)
                        .where(traces.c.id == trace_id, traces.c.status == "finalizing")
                        .values(status="queued", updated_at=now)
                    )
            if all_queued:
                queued = select(jobs.c.id).where(jobs.c.state == "queued")
                requeued = list(conn.execute(queued.order_by(jobs.c.created_at)).scalars())
        return [self.get_job(i) for i in requeued]

    # -- tokens and sessions --------------------------------------------------------------------

    def create_token(self, developer_id: str) -> str:
        token = "dt_" + secrets.token_urlsafe(32)
        now = utcnow()
        with self._failing("could not store the token"), self._writer.begin() as conn:
            conn.execute(
                tokens.insert().values(
                    id=new_trace_id(),
                    token_hash=_token_hash(token),
                    developer_id=developer_id,
                    created_at=now,
                )
            )
            # With the token, atomically: from now on this store always requires a token.
            self._set_flag(conn, "secured", "1", now)
        return token

    def _set_flag(self, conn: Any, name: str, value: str, now: datetime) -> None:
        """Insert the flag unless it is set; a concurrent first token that set it just before
        is fine (a savepoint keeps this transaction alive after the duplicate key)."""
        if conn.execute(select(flags.c.name).where(flags.c.name == name)).first() is None:
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(flags.insert().values(name=name, value=value, created_at=now))

    def find_token(self, token: str) -> TokenInfo | None:
        with self._failing("could not check the token"), self.engine.begin() as conn:
            row = conn.execute(
                select(tokens).where(
                    tokens.c.token_hash == _token_hash(token), tokens.c.revoked_at.is_(None)
                )
            ).first()
        return conv.token_info_from_row(row) if row is not None else None

    def has_tokens(self) -> bool:
        # One primary-key read: an open server asks on every request. Migration 0004 set the
        # flag for tokens issued before it; code older than 0004 cannot open this schema.
        with self._failing("could not read the store's flags"), self.engine.connect() as conn:
            return conn.execute(self._sql_secured).first() is not None

    def list_tokens(self, developer_id: str | None = None) -> builtins.list[TokenInfo]:
        stmt = select(tokens).order_by(tokens.c.created_at, tokens.c.id)
        if developer_id is not None:
            if not _storable(developer_id):
                return []
            stmt = stmt.where(tokens.c.developer_id == developer_id)
        with self._failing("could not list tokens"), self.engine.begin() as conn:
            rows = conn.execute(stmt).all()
        return [conv.token_info_from_row(r) for r in rows]

    def revoke_token(self, token_id: str) -> TokenInfo | None:
        if not _storable(token_id):
            return None
        now = utcnow()
        with self._failing("could not revoke the token"), self._writer.begin() as conn:
            conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            conn.execute(
                update(sessions)
                .where(sessions.c.token_id == token_id, sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )
            row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
        return conv.token_info_from_row(row) if row is not None else None

    def create_session(self, developer_id: str | None, token_id: str | None, ttl_s: float) -> str:
        key = secrets.token_urlsafe(32)
        now = utcnow()
        with self._failing("could not open the session"), self._writer.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))  # housekeeping
            conn.execute(
                sessions.insert().values(
                    id=_token_hash(key),
                    developer_id=developer_id,
                    token_id=token_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
        return key

    def get_session(self, key: str) -> SessionInfo | None:
        # A developer's session lives only as long as its token: revoked or deleted ends it.
        token_ok = and_(
            tokens.c.revoked_at.is_(None), tokens.c.developer_id == sessions.c.developer_id
        )
        stmt = (
            select(sessions.c.developer_id, sessions.c.token_id, sessions.c.expires_at)
            .select_from(sessions.outerjoin(tokens, tokens.c.id == sessions.c.token_id))
            .where(
                sessions.c.id == _token_hash(key),
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > utcnow(),
                or_(sessions.c.token_id.is_(None), and_(tokens.c.id.is_not(None), token_ok)),
            )
        )
        with self._failing("could not read the session"), self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return SessionInfo(
            developer_id=row.developer_id,
            token_id=row.token_id,
            expires_at=conv.utc(row.expires_at),
        )

    def end_session(self, key: str) -> None:
        with self._failing("could not end the session"), self._writer.begin() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.id == _token_hash(key), sessions.c.ended_at.is_(None))
                .values(ended_at=utcnow())
            )

    def close(self) -> None:
        self.engine.dispose()


def _storable(value: str | None) -> bool:
    """No NUL, which PostgreSQL refuses in text (ingest refuses it too): a value with one cannot
    match a row, so it is answered without a query, never as a database error."""
    return value is None or "\x00" not in value


def _known_trace(trace_id: str) -> None:
    """``TraceNotFound``, before any query, for an id no trace can have."""
    if not _storable(trace_id) or len(trace_id) > 64:
        raise TraceNotFound(trace_id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _number(batch: Sequence[Event], first: int) -> None:
    for i, ev in enumerate(batch):
        # Straight into the field storage: `seq` is a plain int and this runs per ingested event.
        ev.__dict__["seq"] = first + i


def _by_event_count(items: _Picked, budget: int) -> Iterator[_Picked]:
    """Consecutive groups holding at most ``budget`` events (a bigger trace is a group alone)."""
    group: _Picked = []
    held = 0
    for item in items:
        n = item[0].event_count
        if group and held + n > budget:
            yield group
            group, held = [], 0
        group.append(item)
        held += n
    if group:
        yield group


def _reason(exc: Exception) -> str:
    # The driver's own message is the useful part; SQLAlchemy wraps it with SQL and parameters.
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
