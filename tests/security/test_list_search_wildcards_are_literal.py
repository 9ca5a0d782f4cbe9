"""The dashboard's search box and repository filter reach SQL ``LIKE``: what a person types is
matched literally. ``%`` and ``_`` (LIKE's wildcards) and ``\\`` (its escape character) are plain
characters, so a search for ``%`` cannot list every trace and ``_`` is not "any character" — on
SQLite and on PostgreSQL, through the storage and through the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app
from debugtrace.storage import TraceQuery
from debugtrace.storage.sql.storage import SQLStorage
from debugtrace.testing import sample_trace

BUGS = {
    "percent": "CPU at 100% in parse_args",
    "digits": "CPU at 1000 in parseXargs",
    "backslash": r"path C:\temp\new_dir is split",
    "plain": "path C:tempnew dir is split",
}

LITERAL = [
    ("%", ["percent"]),
    ("100%", ["percent"]),
    ("_", ["percent", "backslash"]),
    ("parse_args", ["percent"]),
    ("%_%", []),
    ("\\", ["backslash"]),
    ("C:\\temp", ["backslash"]),
    ("\\%", []),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traces.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def stored(url: str) -> Iterator[tuple[SQLStorage, dict[str, str]]]:
    storage = SQLStorage(url)
    ids = {
        name: str(
            storage.create(
                sample_trace("gus", bug_description=bug, repo_url=f"https://x.test/{bug}")
            ).id
        )
        for name, bug in BUGS.items()
    }
    yield storage, ids
    storage.close()


@pytest.mark.parametrize(("typed", "matches"), LITERAL)
def test_wildcards_in_the_search_are_characters(
    stored: tuple[SQLStorage, dict[str, str]], typed: str, matches: list[str]
) -> None:
    storage, ids = stored
    for field in ("text", "repo_contains"):
        found = storage.list(TraceQuery(**{field: typed}))  # type: ignore[arg-type]
        assert {s.id for s in found.items} == {ids[n] for n in matches}, (field, typed)


def test_the_search_box_is_literal_on_the_page(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'traces.db'}",
        load_plugins="",
        sandbox="local",
        grader="heuristic",
    )
    with Collector(settings=settings) as collector:
        ids = {
            name: str(collector.submit(sample_trace("gus", bug_description=bug)).id)
            for name, bug in BUGS.items()
        }
        with TestClient(create_app(collector=collector), base_url="http://127.0.0.1") as client:
            for typed, matches in LITERAL:
                page = client.get("/", params={"q": typed}).text
                listed = set(re.findall(r'<tr data-trace-id="([0-9a-f]+)"', page))
                assert listed == {ids[n] for n in matches}, typed
                n = len(matches)
                assert f"{n} trace{'' if n == 1 else 's'}</strong> match these filters" in page
