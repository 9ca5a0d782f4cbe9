"""The Alembic migrations: they build exactly the tables of schema.py, 0003 fills the verdict
columns of results stored before it, and 0005 marks those that could not test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from debugtrace.results import Grade, Stage, TraceResult
from debugtrace.storage import TraceQuery, Verdict
from debugtrace.storage.sql.engine import make_engine
from debugtrace.storage.sql.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from debugtrace.storage.sql.schema import SCHEMA_REVISION, metadata
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import example_validation


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def _for_this_database(dialect: str) -> Any:
    """Alembic's ``include_object``: leave out the indexes schema.py makes for other databases
    (``ddl_if(dialect=...)``)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)
        return not (
            type_ == "index" and not reflected and ddl_if is not None and ddl_if.dialect != dialect
        )

    return include


def test_the_code_expects_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_REVISION


@pytest.mark.filterwarnings(  # SQLite: the PostgreSQL-only md5 index cannot be compared there
    "ignore:autogenerate skipping metadata-specified expression-based index"
)
def test_migrations_create_exactly_the_tables_of_schema_py(engine: sa.Engine) -> None:
    assert upgrade(engine) == (None, SCHEMA_REVISION)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _for_this_database(engine.dialect.name)}
        )
        assert compare_metadata(context, metadata) == []
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("traces")}
    repo_index = (
        "ix_traces_repo_url_md5" if engine.dialect.name == "postgresql" else ("ix_traces_repo_url")
    )
    assert indexes == {
        "ix_traces_created",
        "ix_traces_developer_id",
        "ix_traces_status_verdict",
        "ix_traces_stats",
        repo_index,
    }


def _grade(grader: str, score: int) -> Grade:
    return Grade(score=score, grader=grader, summary="s", rubric_version="r1")


def test_0003_fills_the_verdicts_of_results_stored_before(engine: sa.Engine, db_url: str) -> None:
    upgrade(engine, "0002")
    results: dict[str, str | None] = {
        "a" * 24: TraceResult(
            validation=example_validation(True),
            grades=[_grade("heuristic", 4), _grade("openai", 2), _grade("heuristic", 5)],
        ).model_dump_json(),
        "b" * 24: TraceResult(validation=example_validation(False)).model_dump_json(),
        "c" * 24: TraceResult(grades=[_grade("heuristic", 3)]).model_dump_json(),
        "d" * 24: None,
        "e" * 24: json.dumps({"grades": [{"score": 9}]}),  # not a valid result: no verdict
    }
    old_traces = sa.table(
        "traces",
        *(
            sa.column(name)
            for name in ("id", "developer_id", "repo_url", "bug_description", "status")
        ),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("result", sa.Text),
    )
    now = datetime(2025, 3, 3, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            old_traces.insert(),
            [
                {
                    "id": tid,
                    "developer_id": "old",
                    "repo_url": "https://example.org/r",
                    "bug_description": "b",
                    "status": "finalized" if result else "open",
                    "created_at": now,
                    "updated_at": now,
                    "result": result,
                }
                for tid, result in results.items()
            ],
        )
    assert upgrade(engine) == ("0002", SCHEMA_REVISION)
    storage = SQLStorage(db_url)
    try:
        assert storage.verdicts(list(results)) == {
            "a" * 24: Verdict(validated=True, score=2),
            "b" * 24: Verdict(validated=False),
            "c" * 24: Verdict(score=3),
            "d" * 24: Verdict(),
            "e" * 24: Verdict(),
        }
        stats = storage.stats("old")
        assert stats.by_score() == {2: 1, 3: 1, None: 3}
        assert [s.id for s in storage.list(TraceQuery(repo_url="https://example.org/r")).items] == (
            sorted(results, reverse=True)
        )
    finally:
        storage.close()


def test_0003_downgrades_and_upgrades_again(engine: sa.Engine) -> None:
    from alembic import command

    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")  # type: ignore[arg-type]
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("traces")}
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("traces")}
        assert current_revision(conn) == "0002"
    assert not {"validated", "score"} & columns
    assert indexes == {"ix_traces_developer_id", "ix_traces_status"}
    assert upgrade(engine) == ("0002", SCHEMA_REVISION)


def test_0004_keeps_a_store_that_issued_tokens_secured(engine: sa.Engine, db_url: str) -> None:
    upgrade(engine, "0003")
    now = datetime(2025, 3, 3, 12, tzinfo=UTC)
    old_tokens = sa.table(
        "tokens",
        *(sa.column(name) for name in ("id", "token_hash", "developer_id")),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    with engine.begin() as conn:
        conn.execute(
            old_tokens.insert().values(
                id="a" * 24, token_hash="0" * 64, developer_id="old", created_at=now, revoked_at=now
            )
        )
    assert upgrade(engine) == ("0003", SCHEMA_REVISION)
    storage = SQLStorage(db_url)
    try:
        # Even with its only token revoked, then its row deleted: never open again.
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM tokens")
        assert storage.has_tokens()
    finally:
        storage.close()


def test_0004_downgrades_and_upgrades_again(engine: sa.Engine) -> None:
    from alembic import command

    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")  # type: ignore[arg-type]
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        columns = {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
        assert current_revision(conn) == "0003"
    assert not {"flags", "sessions"} & tables
    assert not {"owner", "lease_expires_at"} & columns
    assert upgrade(engine) == ("0003", SCHEMA_REVISION)


def _insert_old_traces(engine: sa.Engine, results: dict[str, str | None]) -> None:
    """Rows as code before 0005 wrote them (no held_out, no untested)."""
    old_traces = sa.table(
        "traces",
        *(
            sa.column(name)
            for name in ("id", "developer_id", "repo_url", "bug_description", "status")
        ),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("result", sa.Text),
    )
    now = datetime(2025, 3, 3, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            old_traces.insert(),
            [
                {
                    "id": tid,
                    "developer_id": "old",
                    "repo_url": "https://example.org/r",
                    "bug_description": "b",
                    "status": "finalized" if result else "open",
                    "created_at": now,
                    "updated_at": now,
                    "result": result,
                }
                for tid, result in results.items()
            ],
        )


def test_0005_marks_results_that_could_not_test_and_reads_old_traces_without_held_out(
    engine: sa.Engine, db_url: str
) -> None:
    upgrade(engine, "0004")
    no_tests = Stage(name="tests", status="failed", message="the test run reported no tests")
    results: dict[str, str | None] = {
        "a" * 24: TraceResult(
            validation=example_validation(True), grades=[_grade("heuristic", 4)]
        ).model_dump_json(),
        # Recorded before could-not-test existed: a tests stage that failed without a verdict.
        "b" * 24: TraceResult(stages=[no_tests], grades=[_grade("heuristic", 5)]).model_dump_json(),
        "c" * 24: TraceResult(
            stages=[Stage(name="tests", status="skipped", message="nothing to validate")]
        ).model_dump_json(),
        "d" * 24: None,
    }
    _insert_old_traces(engine, results)
    assert upgrade(engine) == ("0004", SCHEMA_REVISION)
    storage = SQLStorage(db_url)
    try:
        assert storage.verdicts(list(results)) == {
            "a" * 24: Verdict(validated=True, score=4),
            "b" * 24: Verdict(score=5, untested=True),
            "c" * 24: Verdict(),
            "d" * 24: Verdict(),
        }
        assert storage.stats("old").untested() == 1
        assert all(storage.get(tid).held_out is None for tid in results)
    finally:
        storage.close()


def test_0005_downgrades_and_upgrades_again(engine: sa.Engine) -> None:
    from alembic import command

    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")  # type: ignore[arg-type]
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("traces")}
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("traces")}
        assert current_revision(conn) == "0004"
    assert not {"held_out", "untested"} & columns
    assert indexes["ix_traces_status_verdict"] == ["status", "validated", "score"]
    assert upgrade(engine) == ("0004", SCHEMA_REVISION)
