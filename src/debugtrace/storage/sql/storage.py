"""SQLAlchemy implementation of :class:`debugtrace.storage.Storage`.

Events are rows keyed by (trace_id, seq). ``traces.event_count`` doubles as the sequence allocator:
an append bumps it by the batch size with ``UPDATE ... RETURNING`` in the same transaction as the
inserts, which row-locks the trace (PostgreSQL) or holds the write lock (SQLite), so concurrent
appenders get unique, gap-free numbers and a failed batch leaves no trace of itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, Row, and_, cast, func, select, true, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from debugtrace.config import Limits
from debugtrace.errors import InvalidTrace, StorageError, TraceNotFound
from debugtrace.model import EVENT_LIST, Event, Trace, TraceStatus, _Details, utcnow
from debugtrace.results import TraceResult
from debugtrace.storage import (
    ExportQuery,
    Storage,
    TracePage,
    TraceQuery,
    TraceStats,
    TraceSummary,
    Verdict,
    new_trace_id,
)

if TYPE_CHECKING:
    from debugtrace.jobs import Job
from debugtrace.storage.sql.engine import IMMEDIATE, make_engine
from debugtrace.storage.sql.migrate import ensure_schema
from debugtrace.storage.sql.schema import events, jobs, tokens, traces

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


_Picked = list[tuple[Row[Any], TraceResult]]
"""Trace rows chosen for an export, with their parsed results (``list`` is a method below)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _details_json(details: _Details) -> str:
    # The model's own serializer without the model_dump_json wrapper (this runs per event); every
    # field is written (defaults too: exclude_unset costs a third more per event).
    return details.__pydantic_serializer__.to_json(details).decode()


def _utc(value: datetime | int) -> datetime:
    # SQLite hands back naive datetimes (or integer microseconds); everything stored was UTC.
    if isinstance(value, int):
        return _EPOCH + value * _MICROSECOND
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
        self._sql_insert = (
            f"INSERT INTO events (trace_id, seq, type, timestamp, details) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})"
        )
        self._sqlite = self.engine.dialect.name == "sqlite"
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
                    )
                )
                if stored.events:
                    conn.exec_driver_sql(self._sql_insert, self._event_rows(tid, stored.events))
        except SQLAlchemyError as exc:
            raise StorageError(f"could not store the trace: {_reason(exc)}") from exc
        return stored

    def append_events(self, trace_id: str, batch: Sequence[Event]) -> list[Event]:
        """Append ``batch``, setting ``seq`` on the given event objects; returns them."""
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
            epoch, us = _EPOCH, _MICROSECOND
            # _details_json inlined: one Python call less per event.
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
        return [
            (trace_id, ev.seq, ev.type, ev.timestamp, _details_json(ev.details)) for ev in batch
        ]

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
                        updated_at=utcnow(),
                    )
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
        return _trace(row, json.loads(row.result) if row.result else {}, _parse_events(rows))

    def get_summary(self, trace_id: str) -> TraceSummary:
        """The trace's row without its events; raises ``TraceNotFound``."""
        try:
            with self.engine.begin() as conn:
                stmt = select(*_SUMMARY_COLUMNS).where(traces.c.id == trace_id)
                row = conn.execute(stmt).first()
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read the trace: {_reason(exc)}") from exc
        if row is None:
            raise TraceNotFound(trace_id)
        return TraceSummary.model_validate(_summary_dict(row))

    def list(self, query: TraceQuery) -> TracePage:
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
        if query.cursor:
            conds.append(traces.c.id < query.cursor)
        stmt = (
            select(*_SUMMARY_COLUMNS)
            .where(and_(true(), *conds))
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

    VERDICTS_PER_QUERY = 500
    """Ids per ``IN (...)`` list when reading verdicts."""

    def verdicts(self, trace_ids: Collection[str]) -> dict[str, Verdict]:
        """Read from the ``validated`` and ``score`` columns (``save_result`` writes them with
        the result), one query per :attr:`VERDICTS_PER_QUERY` ids."""
        ids = list(dict.fromkeys(trace_ids))
        out: dict[str, Verdict] = {}
        try:
            with self.engine.begin() as conn:
                for i in range(0, len(ids), self.VERDICTS_PER_QUERY):
                    chunk = ids[i : i + self.VERDICTS_PER_QUERY]
                    rows = conn.execute(
                        select(traces.c.id, traces.c.validated, traces.c.score).where(
                            traces.c.id.in_(chunk)
                        )
                    )
                    for tid, validated, score in rows:
                        out[tid] = Verdict(
                            validated=None if validated is None else bool(validated), score=score
                        )
        except SQLAlchemyError as exc:
            raise StorageError(f"could not read results: {_reason(exc)}") from exc
        return out

    def stats(self, developer_id: str | None = None) -> TraceStats:
        """Two ``GROUP BY`` queries, by status and verdict and by developer and week, that read
        only the indexes ``ix_traces_status_verdict`` and ``ix_traces_stats`` (see schema.py)."""
        week = self._week_of_created_at()
        if week is None:  # a database without a known week function: count in Python
            return super().stats(developer_id)
        cond = traces.c.developer_id == developer_id if developer_id is not None else true()
        by_verdict = (
            select(traces.c.status, traces.c.validated, traces.c.score, func.count())
            .where(cond)
            .group_by(traces.c.status, traces.c.validated, traces.c.score)
        )
        by_week = (
            select(traces.c.developer_id, week, func.count())
            .where(cond)
            .group_by(traces.c.developer_id, week)
        )
        try:
            with self.engine.begin() as conn:
                verdicts = {
                    (status, None if validated is None else bool(validated), score): n
                    for status, validated, score, n in conn.execute(by_verdict)
                }
                weeks = {(dev, _date(day)): n for dev, day, n in conn.execute(by_week)}
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
        conds = _export_conditions(query)
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
            trace = _trace(row, {}, _parse_events(per_trace.pop(row.id, [])))
            trace.result = result
            yield trace

    def count_traces(self, query: ExportQuery) -> int | None:
        """Exact when only developer and since filter (one ``count(*)``); None otherwise."""
        if query.filters_results:
            return None
        stmt = select(func.count()).select_from(traces)
        stmt = stmt.where(and_(true(), *_export_conditions(query)))
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(stmt).scalar_one())
        except SQLAlchemyError as exc:
            raise StorageError(f"could not count traces: {_reason(exc)}") from exc

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        from debugtrace.errors import JobConflict
        from debugtrace.jobs import Job

        now = utcnow()
        job_id = new_trace_id()
        try:
            with self._writer.begin() as conn:
                # The trace's status is the lock: only one finalize can be queued or running.
                moved = conn.execute(
                    update(traces)
                    .where(traces.c.id == trace_id, traces.c.status.in_(["open", "finalized"]))
                    .values(status="queued", updated_at=now)
                ).rowcount
                if not moved:
                    row = conn.execute(
                        select(traces.c.status).where(traces.c.id == trace_id)
                    ).first()
                    if row is None:
                        raise TraceNotFound(trace_id)
                    if kind == "finalize":
                        raise JobConflict(
                            f"trace {trace_id} is already being finalized ({row.status})"
                        )
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
        except SQLAlchemyError as exc:
            raise StorageError(f"could not queue the job: {_reason(exc)}") from exc
        return Job(
            id=job_id,
            trace_id=trace_id,
            kind=kind,
            state="queued",
            options=options,
            created_at=now,
            updated_at=now,
        )

    def claim_job(self, job_id: str) -> Job | None:
        with self._writer.begin() as conn:
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "queued")
                .values(state="running", attempts=jobs.c.attempts + 1, updated_at=utcnow())
            ).rowcount
        return self.get_job(job_id) if claimed else None

    def finish_job(self, job_id: str, state: str, error: str | None = None) -> Job:
        with self._writer.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(state=state, error=error, updated_at=utcnow())
            )
            # A failed finalize must not leave its trace locked as queued/finalizing.
            trace_id = conn.execute(select(jobs.c.trace_id).where(jobs.c.id == job_id)).scalar()
            conn.execute(
                update(traces)
                .where(traces.c.id == trace_id, traces.c.status.in_(["queued", "finalizing"]))
                .values(status="finalized" if state == "done" else "open", updated_at=utcnow())
            )
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> Job:
        from debugtrace.errors import JobNotFound
        from debugtrace.jobs import Job

        with self.engine.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        doc = dict(row._mapping)
        doc["options"] = json.loads(doc["options"] or "{}")
        doc["created_at"] = _utc(doc["created_at"])
        doc["updated_at"] = _utc(doc["updated_at"])
        return Job.model_validate(doc)

    def requeue_jobs(self) -> Sequence[Job]:
        with self._writer.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.state == "running")
                .values(state="queued", updated_at=utcnow())
            )
            ids = (
                conn.execute(
                    select(jobs.c.id).where(jobs.c.state == "queued").order_by(jobs.c.created_at)
                )
                .scalars()
                .all()
            )
        return [self.get_job(i) for i in ids]

    # -- tokens ---------------------------------------------------------------------------------

    def create_token(self, developer_id: str) -> str:
        token = "dt_" + secrets.token_urlsafe(32)
        with self._writer.begin() as conn:
            conn.execute(
                tokens.insert().values(
                    id=new_trace_id(),
                    token_hash=_token_hash(token),
                    developer_id=developer_id,
                    created_at=utcnow(),
                )
            )
        return token

    def token_developer(self, token: str) -> str | None:
        with self.engine.begin() as conn:
            dev = conn.execute(
                select(tokens.c.developer_id).where(
                    tokens.c.token_hash == _token_hash(token), tokens.c.revoked_at.is_(None)
                )
            ).scalar()
        return str(dev) if dev is not None else None

    def has_tokens(self) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(select(tokens.c.id).limit(1)).first() is not None

    def close(self) -> None:
        self.engine.dispose()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _number(batch: Sequence[Event], first: int) -> None:
    for i, ev in enumerate(batch):
        # Straight into the field storage: `seq` is a plain int and this runs per ingested event.
        ev.__dict__["seq"] = first + i


def _export_conditions(query: ExportQuery) -> list[Any]:
    """SQL conditions for ``query``; the result filters only narrow, `accepts` decides."""
    conds: list[Any] = []
    if query.developer_id is not None:
        conds.append(traces.c.developer_id == query.developer_id)
    if query.since is not None:
        conds.append(traces.c.created_at >= query.since)
    # Cheap necessary conditions on the stored result JSON (written compact by pydantic), so
    # traces that cannot match are skipped in the database; `accepts` decides exactly.
    if query.validated_only:
        conds.append(traces.c.result.like('%"fix_validated":true%'))
    if query.min_score is not None or query.grader is not None:
        conds.append(traces.c.result.like('%"grades":[{%'))
    if query.grader is not None and _PLAIN_NAME.fullmatch(query.grader):
        conds.append(traces.c.result.like(f'%"grader":"{query.grader}"%'))
    return conds


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:/@+-]{1,200}")
"""Grader names whose JSON form is themselves, so a LIKE on the stored result can find them."""


def _parse_events(rows: Sequence[Any]) -> list[Event]:
    """Events from ``(seq, type, timestamp, details)`` rows in ``seq`` order."""
    # One JSON document, parsed and validated in one pydantic-core call: decoding each row's
    # details with json.loads was most of the time of reading a long trace. Every piece was
    # written by us (type from a fixed set, details by the model's serializer).
    return EVENT_LIST.validate_json(
        "["
        + ",".join(
            f'{{"seq":{seq},"type":"{typ}","timestamp":"{_utc(ts).isoformat()}",'
            f'"details":{details}}}'
            for seq, typ, ts, details in rows
        )
        + "]"
    )


def _trace(row: Row[Any], result: dict[str, Any], evs: list[Event]) -> Trace:
    """A trace from its ``traces`` row, its result document and its events."""
    doc = _summary_dict(row)
    doc.pop("event_count")
    doc["metadata"] = json.loads(row.metadata)
    doc["result"] = result
    trace = Trace.model_validate(doc)
    trace.events = evs
    return trace


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


def _summary_dict(row: Row[Any]) -> dict[str, Any]:
    m = row._mapping
    doc = {c.name: m[c.name] for c in _SUMMARY_COLUMNS}
    doc["created_at"] = _utc(doc["created_at"])
    doc["updated_at"] = _utc(doc["updated_at"])
    return doc


def _date(value: date | str) -> date:
    # SQLite's date() gives text; PostgreSQL a date.
    return date.fromisoformat(value) if isinstance(value, str) else value


def _reason(exc: Exception) -> str:
    # The driver's own message is the useful part; SQLAlchemy wraps it with SQL and parameters.
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
