"""The ``debugtrace`` command, run as users run it: the installed console script, in a subprocess.

Each test has its own SQLite file (``DEBUGTRACE_DATABASE_URL``), data dir and working directory, and
loads no third-party plugins. Tests that need a stored trace start from a copy of one seeded
database, so no two tests ever share a database they could change.

The contract for errors: bad input prints exactly one line, starting with ``error:``, on stderr (no
traceback) and exits 2; a failing backend (unreachable database) exits 1; nothing is stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEBUGTRACE = Path(sys.executable).parent / "debugtrace"

# shared/examples/minimal-trace.json, embedded so the tests need no other files, plus unknown keys.
MINIMAL_TRACE: dict[str, Any] = {
    "developer_id": "dev_042",
    "repo_url": "https://github.com/example/calc",
    "bug_description": "divide() returns an int for exact results and crashes on zero",
    "events": [
        {
            "type": "reasoning",
            "timestamp": "2025-03-02T09:00:00Z",
            "details": {
                "text": "The crash mentions ZeroDivisionError, so divide() has no guard for b == 0",
                "reasoning_type": "hypothesis",
                "confidence": "medium",
            },
        },
        {
            "type": "command",
            "timestamp": "2025-03-02T09:01:30Z",
            "details": {
                "command": "pytest -x tests/test_calc.py",
                "output": "FAILED tests/test_calc.py::test_divide_by_zero - ZeroDivisionError",
                "exit_code": 1,
                "harness_step": 7,  # an unknown key: kept and returned as sent
            },
        },
        {
            "type": "edit",
            "timestamp": "2025-03-02T09:04:10Z",
            "details": {
                "file": "calc.py",
                "diff": "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,4 @@\n def divide(a, b):\n"
                '+    if b == 0:\n+        raise ValueError("division by zero")\n'
                "     return a / b\n",
                "tool": {"name": "apply_patch", "version": 2},  # unknown, nested
            },
        },
        {
            "type": "reasoning",
            "timestamp": "2025-03-02T09:05:00Z",
            "details": {
                "text": "Guard added; the failing test should now pass "
                "and nothing else should change",
                "reasoning_type": "conclusion",
                "confidence": "high",
            },
        },
    ],
}

MORE_EVENTS: list[dict[str, Any]] = [
    {"type": "command", "details": {"command": "pytest", "output": "3 passed", "exit_code": 0}},
    {"type": "reasoning", "details": {"text": "All green", "mood": "relieved"}},
]


def with_changes(doc: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with top-level keys replaced (``None`` removes the key)."""
    out: dict[str, Any] = json.loads(json.dumps(doc))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def with_event_details(index: int, **details: Any) -> dict[str, Any]:
    """The minimal trace with some details of event ``index`` replaced."""
    doc = with_changes(MINIMAL_TRACE)
    doc["events"][index]["details"].update(details)
    return doc


# -- running the CLI --------------------------------------------------------------------------


@dataclass
class Run:
    """What one ``debugtrace`` invocation did."""

    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.splitlines()[-1]

    def json(self) -> Any:
        return json.loads(self.out)

    def assert_ok(self) -> Run:
        assert self.code == 0, f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"
        return self

    def assert_one_error(self, code: int = 2, *mentions: str) -> str:
        """Exactly one ``error:`` line on stderr, nothing on stdout, the given exit code."""
        assert "Traceback" not in self.err, self.err
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        assert lines[0].startswith("error: "), lines[0]
        assert self.out == ""
        assert self.code == code, f"exit {self.code}: {lines[0]}"
        for text in mentions:
            assert text in lines[0]
        return lines[0]


def hermetic_env(home: Path, **extra: str) -> dict[str, str]:
    """The current environment without any DEBUGTRACE_* setting, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGTRACE_")}
    env.update(
        DEBUGTRACE_DATABASE_URL=f"sqlite:///{home / 'traces.db'}",
        DEBUGTRACE_LOAD_PLUGINS="",
        DEBUGTRACE_DATA_DIR=str(home / "data"),
    )
    env.update(extra)
    return env


def run_cli(home: Path, *args: str, stdin: str | None = None, env: Mapping[str, str] = {}) -> Run:
    """Run the installed ``debugtrace`` script in ``home`` (its cwd, so no stray ``.env``)."""
    proc = subprocess.run(
        [str(DEBUGTRACE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=home,
        env=hermetic_env(home, **env),
        timeout=60,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


CLI = Callable[..., Run]


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """``cli("list", "--json")`` runs the command against this test's own database."""

    def call(*args: str, stdin: str | None = None, env: Mapping[str, str] = {}) -> Run:
        return run_cli(tmp_path, *args, stdin=stdin, env=env)

    return call


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, Any], str]:
    """``write("t.json", doc)`` writes ``doc`` (as JSON unless it is text); returns the path."""

    def write_file(name: str, content: Any) -> str:
        path = tmp_path / name
        text = content if isinstance(content, str) else json.dumps(content)
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write_file


@dataclass(frozen=True)
class Seed:
    """A database made by the CLI, and what the CLI said while making it.

    It holds the minimal trace (``trace_id``, submitted from a file by ``dev_042``) and, newer, a
    copy of it by ``bob`` (``bob_id``).
    """

    db: Path
    submit: Run
    trace_id: str
    bob_id: str
    listing: dict[str, Any]
    doc: dict[str, Any]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    home = tmp_path_factory.mktemp("seed")
    (home / "t.json").write_text(json.dumps(MINIMAL_TRACE), encoding="utf-8")
    submit = run_cli(home, "submit", "--no-finalize", "t.json").assert_ok()
    bob = json.dumps(with_changes(MINIMAL_TRACE, developer_id="bob"))
    bob_id = run_cli(home, "submit", "--no-finalize", "-", stdin=bob).assert_ok().last_line
    listing = run_cli(home, "list", "--json").assert_ok().json()
    doc = run_cli(home, "show", submit.last_line, "--json").assert_ok().json()
    assert not (home / "traces.db-wal").exists()  # all in one file, so a copy is the same database
    return Seed(home / "traces.db", submit, submit.last_line, bob_id, listing, doc)


@pytest.fixture
def trace_id(seed: Seed, tmp_path: Path) -> str:
    """This test's database starts as a copy of the seeded one; returns dev_042's trace id."""
    shutil.copy(seed.db, tmp_path / "traces.db")
    return seed.trace_id


@pytest.fixture
def assert_unchanged(seed: Seed, tmp_path: Path, trace_id: str) -> Callable[[], None]:
    """Checks that this test's database is still byte for byte the seeded one.

    Cheaper than asking the CLI (one subprocess less per test) and stricter; the CLI's own view
    (``list --json`` / ``show --json``) is compared in ``test_a_refused_request_changes_nothing``.
    """

    def check() -> None:
        assert (tmp_path / "traces.db").read_bytes() == seed.db.read_bytes()
        wal = tmp_path / "traces.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0

    return check


# -- storing and reading traces ---------------------------------------------------------------


def test_submit_prints_the_new_id_as_the_last_line(seed: Seed) -> None:
    # `seed` ran `debugtrace submit t.json` on a new database.
    assert seed.submit.code == 0
    assert seed.submit.last_line == seed.trace_id
    assert seed.trace_id in {item["id"] for item in seed.listing["items"]}
    assert "stored trace with 4 events" in seed.submit.err  # progress goes to stderr


def test_submit_dash_reads_the_trace_from_stdin(cli: CLI, trace_id: str) -> None:
    doc = with_changes(MINIMAL_TRACE, developer_id="carol")
    new_id = cli("submit", "-", stdin=json.dumps(doc)).assert_ok().last_line
    assert new_id not in (trace_id, "")
    stored = cli("show", new_id, "--json").assert_ok().json()
    assert stored["developer_id"] == "carol"
    assert len(stored["events"]) == 4


def test_show_prints_a_human_timeline(cli: CLI, trace_id: str) -> None:
    out = cli("show", trace_id).assert_ok().out
    assert f"trace {trace_id}  [open]" in out
    assert "developer  dev_042" in out
    assert "events (4):" in out
    assert "hypothesis (medium confidence)" in out
    assert "so divide() has no guard for b == 0" in out
    assert "$ pytest -x tests/test_calc.py  [exit 1]" in out
    assert "edit calc.py (+2 -0)" in out
    assert '+        raise ValueError("division by zero")' in out
    # In time order, numbered from 1.
    assert out.index("#1 ") < out.index("#2 ") < out.index("#3 ") < out.index("#4 ")


def test_show_json_is_the_stored_document(cli: CLI, trace_id: str) -> None:
    doc = cli("show", trace_id, "--json").assert_ok().json()
    assert doc["id"] == trace_id
    assert doc["status"] == "open"
    for key in ("developer_id", "repo_url", "bug_description"):
        assert doc[key] == MINIMAL_TRACE[key]
    assert [e["seq"] for e in doc["events"]] == [1, 2, 3, 4]
    for got, sent in zip(doc["events"], MINIMAL_TRACE["events"], strict=True):
        assert got["type"] == sent["type"]
        assert got["timestamp"] == sent["timestamp"]
        # Every key sent comes back as sent, unknown ones included; the rest are unset (null).
        assert {k: v for k, v in got["details"].items() if v is not None} == sent["details"]


def test_list_shows_one_trace_a_line_newest_first(cli: CLI, trace_id: str, seed: Seed) -> None:
    lines = cli("list").assert_ok().out.splitlines()
    assert [line.split()[0] for line in lines] == [seed.bob_id, trace_id]
    assert "4 events  bob  divide() returns" in lines[0]
    # A page that is not the last says how to get the next one.
    first_page = cli("list", "--limit", "1").assert_ok().out.splitlines()
    assert first_page[0].split()[0] == seed.bob_id
    assert first_page[-1].startswith("more: --cursor ")


def test_list_searches_bug_texts_and_repositories(cli: CLI, trace_id: str, seed: Seed) -> None:
    def ids(*args: str) -> list[str]:
        return [i["id"] for i in cli("list", "--json", *args).assert_ok().json()["items"]]

    assert ids("--search", "DIVIDE()", "--developer", "dev_042") == [trace_id]
    assert ids("--search", "no such bug") == []
    assert trace_id in ids("--repo-contains", "EXAMPLE", "--by-created")


def test_list_on_an_empty_database(cli: CLI) -> None:
    assert cli("list").assert_ok().out == "no traces\n"


def test_list_json_filters_by_developer(cli: CLI, trace_id: str) -> None:
    page = cli("list", "--json", "--developer", "dev_042").assert_ok().json()
    assert [item["id"] for item in page["items"]] == [trace_id]
    assert page["items"][0]["developer_id"] == "dev_042"
    assert page["items"][0]["event_count"] == 4
    assert page["next_cursor"] is None


def test_list_json_pages_with_limit_and_cursor(cli: CLI, trace_id: str, seed: Seed) -> None:
    page1 = cli("list", "--json", "--limit", "1").assert_ok().json()
    assert [item["id"] for item in page1["items"]] == [seed.bob_id]
    assert page1["next_cursor"]
    page2 = cli("list", "--json", "--limit", "1", "--cursor", page1["next_cursor"]).json()
    assert [item["id"] for item in page2["items"]] == [trace_id]


@pytest.mark.parametrize(
    "batch", [MORE_EVENTS, {"events": MORE_EVENTS}], ids=["a list", "an events object"]
)
def test_events_add_appends_a_batch(
    cli: CLI, write: Callable[..., str], trace_id: str, batch: Any
) -> None:
    run = cli("events", "add", trace_id, write("more.json", batch)).assert_ok()
    assert run.out == f"added 2 events to {trace_id} (seq 5..6)\n"
    events = cli("show", trace_id, "--json").assert_ok().json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[5]["details"]["mood"] == "relieved"


def test_events_add_dash_reads_stdin(cli: CLI, trace_id: str) -> None:
    run = cli("events", "add", trace_id, "-", stdin=json.dumps(MORE_EVENTS[:1])).assert_ok()
    assert run.out == f"added 1 events to {trace_id} (seq 5..5)\n"


# -- schemas, plugins, database, help ---------------------------------------------------------


def test_schema_prints_the_trace_json_schema(cli: CLI) -> None:
    schema = cli("schema").assert_ok().json()
    assert schema["title"] == "Trace"
    assert schema["type"] == "object"
    assert {"developer_id", "repo_url", "bug_description"} <= set(schema["required"])
    assert "events" in schema["properties"]
    assert "$defs" in schema


def test_schema_events_prints_the_event_list_schema(cli: CLI) -> None:
    schema = cli("schema", "events").assert_ok().json()
    assert schema["type"] == "array"
    assert "items" in schema
    assert {"ReasoningEvent", "CommandEvent", "EditEvent"} <= set(schema["$defs"])


def test_plugins_lists_the_builtin_sql_storage(cli: CLI) -> None:
    out = cli("plugins").assert_ok().out
    assert any(
        line.split()[:4] == ["storage", "sql", "debugtrace-collector", "ok"]
        for line in out.splitlines()
    )


def test_plugins_json(cli: CLI) -> None:
    rows = cli("plugins", "--json").assert_ok().json()
    sql = next(r for r in rows if r["kind"] == "storage" and r["name"] == "sql")
    assert sql["package"] == "debugtrace-collector"
    assert sql["installed"] is True
    assert sql["missing"] == []


def test_db_upgrade_creates_a_new_database(cli: CLI, tmp_path: Path) -> None:
    db = tmp_path / "sub" / "new.db"
    run = cli("--database-url", f"sqlite:///{db}", "db", "upgrade").assert_ok()
    assert db.exists()
    assert run.out.startswith("database at revision ")
    assert run.out.endswith(" (was empty)\n")


def test_version(cli: CLI) -> None:
    assert cli("--version").assert_ok().out.startswith("debugtrace-collector ")


@pytest.mark.parametrize("args", [["--help"], ["submit", "--help"], ["events", "add", "--help"]])
def test_help(cli: CLI, args: list[str]) -> None:
    out = cli(*args).assert_ok().out
    assert out.startswith("usage: debugtrace")


# -- bad input: one error line, exit 2, nothing stored ----------------------------------------

MANY_EVENTS = [{"type": "reasoning", "details": {"text": f"thought {i}"}} for i in range(3)]

BAD_TRACES = {
    "malformed JSON": ('{"developer_id": "dev_042",', {}, ["malformed JSON", "line 1"]),
    "a list, not an object": (
        json.dumps([MINIMAL_TRACE]),
        {},
        ["must be a JSON object, not list"],
    ),
    "missing developer_id": (with_changes(MINIMAL_TRACE, developer_id=None), {}, ["developer_id"]),
    "wrong field type": (
        with_event_details(1, exit_code="zero"),
        {},
        ["events.1.details.exit_code", "integer"],
    ),
    "unknown event type": (
        with_changes(MINIMAL_TRACE, events=[{"type": "telepathy", "details": {}}]),
        {},
        ["events.0", "'telepathy'", "'reasoning', 'command', 'edit'"],
    ),
    "oversized output": (
        with_event_details(1, output="x" * 101),
        {"DEBUGTRACE_MAX_OUTPUT_BYTES": "100"},
        ["events.1.details.output", "101 bytes", "DEBUGTRACE_MAX_OUTPUT_BYTES"],
    ),
    "too many events": (
        MINIMAL_TRACE,
        {"DEBUGTRACE_MAX_EVENTS_PER_REQUEST": "2"},
        ["4 events", "limit is 2", "DEBUGTRACE_MAX_EVENTS_PER_REQUEST"],
    ),
}


@pytest.mark.parametrize(("content", "env", "mentions"), BAD_TRACES.values(), ids=list(BAD_TRACES))
def test_submit_refuses_bad_input(
    cli: CLI,
    write: Callable[..., str],
    assert_unchanged: Callable[[], None],
    content: Any,
    env: dict[str, str],
    mentions: list[str],
) -> None:
    cli("submit", write("bad.json", content), env=env).assert_one_error(2, *mentions)
    assert_unchanged()


def test_submit_refuses_bad_input_from_stdin(
    cli: CLI, assert_unchanged: Callable[[], None]
) -> None:
    cli("submit", "-", stdin="not json").assert_one_error(2, "malformed JSON")
    assert_unchanged()


def test_submit_names_a_file_that_does_not_exist(
    cli: CLI, tmp_path: Path, assert_unchanged: Callable[[], None]
) -> None:
    cli("submit", str(tmp_path / "nope.json")).assert_one_error(2, "nope.json", "no such file")
    assert_unchanged()


BAD_BATCHES = {
    "malformed JSON": ("[{", {}, ["malformed JSON"]),
    "an object without events": ({"evts": MORE_EVENTS}, {}, ['{"events": [...]}']),
    "wrong field type in the second event": (
        [MORE_EVENTS[0], {"type": "command", "details": {"command": "ls", "exit_code": "zero"}}],
        {},
        ["events.1.details.exit_code"],
    ),
    "unknown event type": (
        {"events": [{"type": "telepathy", "details": {}}]},
        {},
        ["events.0", "'telepathy'", "'reasoning', 'command', 'edit'"],
    ),
    "too many events": (
        MANY_EVENTS,
        {"DEBUGTRACE_MAX_EVENTS_PER_REQUEST": "2"},
        ["DEBUGTRACE_MAX_EVENTS_PER_REQUEST"],
    ),
}


@pytest.mark.parametrize(
    ("content", "env", "mentions"), BAD_BATCHES.values(), ids=list(BAD_BATCHES)
)
def test_events_add_refuses_bad_input(
    cli: CLI,
    write: Callable[..., str],
    trace_id: str,
    assert_unchanged: Callable[[], None],
    content: Any,
    env: dict[str, str],
    mentions: list[str],
) -> None:
    path = write("bad.json", content)
    cli("events", "add", trace_id, path, env=env).assert_one_error(2, *mentions)
    assert_unchanged()


UNKNOWN_ID = "0000000000nosuchtrace000"


@pytest.mark.parametrize("command", ["show", "finalize"])
def test_unknown_trace_id(cli: CLI, trace_id: str, command: str) -> None:
    cli(command, UNKNOWN_ID).assert_one_error(2, f"no trace with id '{UNKNOWN_ID}'")


def test_events_add_to_an_unknown_trace(
    cli: CLI, write: Callable[..., str], assert_unchanged: Callable[[], None]
) -> None:
    path = write("more.json", MORE_EVENTS)
    cli("events", "add", UNKNOWN_ID, path).assert_one_error(2, f"no trace with id '{UNKNOWN_ID}'")
    assert_unchanged()


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["bogus"], ["invalid choice: 'bogus'", "--help"]),
        ([], ["COMMAND"]),
        (["show"], ["required: ID"]),
        (["events"], ["required: ACTION"]),
        (["events", "add", "some-id"], ["required: FILE|-"]),
        (["list", "--status", "done"], ["invalid choice: 'done'"]),
        (["list", "--limit", "many"], ["invalid int value: 'many'"]),
        (["list", "--limit", "0"], ["limit"]),
        (["--database-url"], ["--database-url"]),
        (["db", "upgrade", "no-such-revision"], ["no-such-revision"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and all(" " not in a for a in v) else None,
)
def test_usage_errors(cli: CLI, args: list[str], mentions: list[str]) -> None:
    cli(*args).assert_one_error(2, *mentions)


@pytest.mark.parametrize(
    ("command", "name", "value"),
    [
        ("list", "DEBUGTRACE_MAX_OUTPUT_BYTES", "abc"),
        ("submit", "DEBUGTRACE_MAX_EVENTS_PER_REQUEST", "0"),
        ("plugins", "DEBUGTRACE_ALLOW_LOCAL_REPOS", "maybe"),
    ],
)
def test_an_invalid_setting_is_named(
    cli: CLI, write: Callable[..., str], command: str, name: str, value: str
) -> None:
    args = [command, write("t.json", MINIMAL_TRACE)] if command == "submit" else [command]
    cli(*args, env={name: value}).assert_one_error(2, name)


def test_a_refused_request_changes_nothing(
    cli: CLI, write: Callable[..., str], trace_id: str, seed: Seed
) -> None:
    # What the CLI itself reports before (in `seed`) and after refusing a trace and a batch.
    limit = {"DEBUGTRACE_MAX_EVENTS_PER_REQUEST": "3"}
    cli("submit", write("t.json", MINIMAL_TRACE), env=limit).assert_one_error(2, "events")
    bad_second = [MORE_EVENTS[0], {"type": "edit", "details": {"file": "calc.py"}}]
    path = write("more.json", bad_second)
    cli("events", "add", trace_id, path).assert_one_error(2, "events.1.details.diff")
    assert cli("list", "--json").assert_ok().json() == seed.listing
    assert cli("show", trace_id, "--json").assert_ok().json() == seed.doc


# -- failures on our side: one error line, exit 1 ---------------------------------------------

UNREACHABLE = "postgresql://tracer:secret@127.0.0.1:1/traces"


@pytest.mark.parametrize("command", [["list"], ["db", "upgrade"]])
def test_an_unreachable_database_is_named_without_its_password(
    cli: CLI, command: list[str]
) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (extra `postgres`) is needed")
    run = cli("--database-url", UNREACHABLE, *command)
    line = run.assert_one_error(1, "postgresql", "tracer:***@127.0.0.1:1/traces")
    assert "secret" not in line
    assert "secret" not in run.out


def test_finalize_reports_each_stage_and_exits_1_when_one_failed(cli: CLI, trace_id: str) -> None:
    # The example's repository (github.com/example/calc) cannot be reached from here.
    run = cli("finalize", trace_id)
    assert run.code == 1
    assert "Traceback" not in run.err
    assert run.err.startswith("error: stage workspace failed: ")
    assert len(run.err.splitlines()) == 1
    assert "workspace  failed" in run.out
    assert "apply      skipped" in run.out


# -- held-out tests and honest verdicts --------------------------------------------------------

TEST_PATCH = (
    "--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n@@ -1 +1,3 @@\n import calc\n"
    "+def test_divide_by_zero():\n+    assert calc.divide(1, 0) is None\n"
)


@pytest.mark.parametrize(
    ("content", "env", "mentions"),
    [
        (None, {}, ["--test-patch", "no such file"]),
        ("just some words\n", {}, ["--test-patch", "not a unified diff"]),
        (TEST_PATCH, {"DEBUGTRACE_MAX_DIFF_BYTES": "40"}, ["over 40 bytes", "MAX_DIFF_BYTES"]),
        (b"\xff\xfe--- a/x\n", {}, ["not UTF-8"]),
    ],
    ids=["missing", "not-a-diff", "too-big", "not-utf8"],
)
def test_finalize_refuses_a_bad_test_patch_before_running_anything(
    cli: CLI,
    tmp_path: Path,
    trace_id: str,
    assert_unchanged: Callable[[], None],
    content: str | bytes | None,
    env: dict[str, str],
    mentions: list[str],
) -> None:
    patch = tmp_path / "held-out.patch"
    if isinstance(content, bytes):
        patch.write_bytes(content)
    elif content is not None:
        patch.write_text(content, encoding="utf-8")
    cli("finalize", trace_id, "--test-patch", str(patch), env=env).assert_one_error(2, *mentions)
    assert_unchanged()  # no stage ran, nothing was recorded


def test_finalize_refuses_an_empty_expected_test_id(
    cli: CLI, trace_id: str, assert_unchanged: Callable[[], None]
) -> None:
    cli("finalize", trace_id, "--fail-to-pass", "").assert_one_error(2, "--fail-to-pass")
    assert_unchanged()


def test_finalize_takes_a_test_patch_and_expected_tests(
    cli: CLI, write: Callable[..., str], trace_id: str
) -> None:
    # Accepted; the run itself then stops at the unreachable example repository.
    run = cli(
        "finalize",
        trace_id,
        "--test-patch",
        write("held-out.patch", TEST_PATCH),
        "--fail-to-pass",
        "tests/test_calc.py::test_divide_by_zero",
    )
    assert run.code == 1
    assert run.err.startswith("error: stage workspace failed: ")


def test_show_says_could_not_test_and_lists_earlier_runs(
    cli: CLI, tmp_path: Path, trace_id: str
) -> None:
    from datetime import UTC, datetime

    from debugtrace.results import Stage, TraceResult
    from debugtrace.storage.sql.storage import SQLStorage
    from debugtrace.testing import UNTESTED_REASON, example_validation

    validated = TraceResult(
        stages=[Stage(name="tests", status="ok")],
        validation=example_validation(True),
        finalized_at=datetime(2026, 3, 4, 9, tzinfo=UTC),
    )
    untested = TraceResult(
        stages=[Stage(name="tests", status="failed", message=UNTESTED_REASON)],
        validation=example_validation(None),
        finalized_at=datetime(2026, 3, 3, 9, tzinfo=UTC),
    )
    storage = SQLStorage(f"sqlite:///{tmp_path / 'traces.db'}")
    try:
        storage.save_result(trace_id, TraceResult().with_run(untested))
        out = cli("show", trace_id).assert_ok().out
        assert f"  could not test: {UNTESTED_REASON}\n" in out
        assert "fix validated" not in out
        assert "environment: python 3.12.3" in out
        # Validated later: the verdict; the untested run is history.
        storage.save_result(trace_id, storage.get(trace_id).result.with_run(validated))
    finally:
        storage.close()
    out = cli("show", trace_id).assert_ok().out
    assert "  fix validated: yes\n" in out
    assert f"earlier runs (1):\n  2026-03-03 09:00:00  could not test: {UNTESTED_REASON}\n" in out
