"""Several processes appending to one trace: nothing lost, nothing duplicated, no gaps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from debugtrace import Collector, ReasoningEvent

WORKER = """
import sys
from debugtrace import Collector
url, tid, name = sys.argv[1:4]
batches, size = int(sys.argv[4]), int(sys.argv[5])
with Collector(database_url=url) as c:
    for b in range(batches):
        c.add_events(tid, [
            {"type": "reasoning", "details": {"text": f"{name}:{b}:{i}"}} for i in range(size)
        ])
"""

PROCESSES, BATCHES, SIZE = 4, 15, 5


def run_appenders(url: str) -> list[ReasoningEvent]:
    with Collector(database_url=url) as c:
        tid = str(c.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"}).id)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, tid, f"p{n}", str(BATCHES), str(SIZE)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Collector(database_url=url) as c:
        evs = c.get(tid).events
    assert all(isinstance(e, ReasoningEvent) for e in evs)
    return evs  # type: ignore[return-value]


def check(evs: list[ReasoningEvent]) -> None:
    total = PROCESSES * BATCHES * SIZE
    assert [e.seq for e in evs] == list(range(1, total + 1)), "sequence numbers have gaps"
    texts = [e.details.text for e in evs]
    assert len(set(texts)) == total, "an event was duplicated or lost"
    for n in range(PROCESSES):
        mine = [t for t in texts if t.startswith(f"p{n}:")]
        assert mine == [f"p{n}:{b}:{i}" for b in range(BATCHES) for i in range(SIZE)]
    # Batches are atomic: the events of one batch sit next to each other.
    for start in range(0, total, SIZE):
        assert len({t.rsplit(":", 1)[0] for t in texts[start : start + SIZE]}) == 1


def test_processes_appending_to_sqlite(sqlite_url: str) -> None:
    check(run_appenders(sqlite_url))


@pytest.mark.postgres
def test_processes_appending_to_postgres(pg_url: str) -> None:
    check(run_appenders(pg_url))


def test_first_use_by_several_processes_creates_the_schema_once(sqlite_url: str) -> None:
    code = (
        "import sys; from debugtrace import Collector; "
        "c = Collector(database_url=sys.argv[1]); print(c.traces().model_dump_json())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, sqlite_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert json.loads(out)["items"] == []
