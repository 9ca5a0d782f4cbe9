"""The SQL storage's own answers to the dashboard's reads (verdict columns, GROUP BYs, the
repository index) agree with the storage contract's defaults, on a varied store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from debugtrace.model import TraceStatus
from debugtrace.results import Grade, Stage, TraceResult
from debugtrace.storage import ExportQuery, Storage, TraceQuery, Verdict
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import DefaultReads, example_validation, sample_trace

STATUSES: tuple[TraceStatus, ...] = ("open", "queued", "finalizing", "finalized")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'traces.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = SQLStorage(url)
    yield s
    s.close()


def _random_result(rng: random.Random) -> TraceResult | None:
    kind = rng.random()
    if kind < 0.2:
        return None
    if kind < 0.3:
        return TraceResult(stages=[Stage(name="workspace", status="error", message="no clone")])
    if kind < 0.35:  # a tests stage that failed without a verdict (before could_not_test)
        return TraceResult(stages=[Stage(name="tests", status="failed", message="no tests ran")])
    # No verdict, validated or not, or could not test (fix_validated None).
    validation = None if rng.random() < 0.2 else example_validation(rng.choice((True, False, None)))
    grades = [
        Grade(score=rng.randint(1, 5), grader=rng.choice(("heuristic", "openai", "x")))
        for _ in range(rng.choice((0, 1, 1, 2, 3)))
    ]
    result = TraceResult(validation=validation, grades=grades)
    if rng.random() < 0.3:  # finalized again: a later run (maybe failed early) with history
        later = _random_result(rng)
        if later is not None:
            result = result.with_run(later)
    return result


def _seed(storage: Storage, n: int = 150, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ids = []
    for _ in range(n):
        offset = timezone(timedelta(hours=rng.randint(-12, 12)))
        when = (start + timedelta(minutes=rng.randint(0, 60 * 24 * 400))).astimezone(offset)
        trace = sample_trace(
            f"dev{rng.randint(0, 4)}",
            repo_url=f"https://example.org/r{rng.randint(0, 3)}",
            created_at=when,
            events=[],
        )
        tid = str(storage.create(trace).id)
        result = _random_result(rng)
        if result is not None:
            storage.save_result(tid, result)
        status = rng.choice(STATUSES)
        if status != "open":
            storage.set_status(tid, status)
        ids.append(tid)
    return ids


def test_the_sql_answers_agree_with_the_defaults(storage: SQLStorage) -> None:
    ids = _seed(storage)
    default = DefaultReads(storage)
    verdicts = storage.verdicts(ids)
    assert verdicts == default.verdicts(ids)
    assert verdicts == {tid: Verdict.of(storage.get(tid).result) for tid in ids}
    assert len(set(verdicts.values())) > 10  # the seed makes many kinds
    everyone = storage.stats()
    assert everyone == default.stats()
    assert everyone.total == len(ids)
    assert len(everyone.weeks) > 50
    for dev in ("dev0", "dev3", "nobody"):
        assert storage.stats(dev) == default.stats(dev)
    for tid in ids[::10]:
        assert storage.get_summary(tid) == default.get_summary(tid)
    # The export's filters (the verdict columns in SQL) agree with the default's `accepts`.
    for query in (
        ExportQuery(validated_only=True),
        ExportQuery(min_score=3),
        ExportQuery(min_score=2, grader="heuristic"),
        ExportQuery(developer_id="dev1", validated_only=True, min_score=1),
    ):
        assert [t.id for t in storage.iter_traces(query)] == [
            t.id for t in default.iter_traces(query)
        ]


def _list_sql(storage: SQLStorage, query: TraceQuery) -> tuple[str, Any]:
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(storage.engine, "before_cursor_execute", capture)
    try:
        storage.list(query)
    finally:
        event.remove(storage.engine, "before_cursor_execute", capture)
    (found,) = [s for s in sent if "ORDER BY traces.id DESC" in s[0]]
    return found


def test_the_list_by_repository_is_served_by_an_index(storage: SQLStorage) -> None:
    _seed(storage, n=60)
    statement, params = _list_sql(storage, TraceQuery(repo_url="https://example.org/r1"))
    with storage.engine.connect() as conn:
        if storage.engine.dialect.name == "sqlite":
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            assert "USING INDEX ix_traces_repo_url (repo_url=?)" in str(plan)
        else:  # a table this small is read whole unless told otherwise
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
            assert "ix_traces_repo_url_md5" in str(plan)
    # And it still finds exactly that repository's traces, a long URL included.
    long_url = "https://example.org/" + "x" * 5000
    other = storage.create(sample_trace(repo_url=long_url))
    assert [s.id for s in storage.list(TraceQuery(repo_url=long_url)).items] == [other.id]
    assert all(
        s.repo_url == "https://example.org/r1"
        for s in storage.list(TraceQuery(repo_url="https://example.org/r1")).items
    )


def test_the_overview_counts_read_only_indexes_on_sqlite(tmp_path: Path) -> None:
    storage = SQLStorage(f"sqlite:///{tmp_path / 'traces.db'}")
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "GROUP BY" in statement:
            sent.append((statement, params))

    try:
        _seed(storage, n=20)
        event.listen(storage.engine, "before_cursor_execute", capture)
        storage.stats()
        storage.stats("dev1")
        event.remove(storage.engine, "before_cursor_execute", capture)
        assert len(sent) == 4
        with storage.engine.connect() as conn:
            for statement, params in sent:
                plan = str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all())
                assert "COVERING INDEX" in plan, (statement, plan)
    finally:
        storage.close()
