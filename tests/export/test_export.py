"""`debugtrace export`: stored traces out as chat fine-tuning rows, Parquet, or OpenTelemetry spans.

Read top to bottom: a finalized trace exported as chat rows (the steps and the fix are assistant
turns); how a row is built; the filters and the score rule; bad input; Parquet and OTel; the Python
API; and memory staying flat over 100,000 traces streamed from the database.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Collector, Grade, Settings, Trace, TraceResult
from debugtrace.cli import main
from debugtrace.errors import ExportError
from debugtrace.export import FORMATS, ExportOptions
from debugtrace.export.chat import TOOLS, to_chat
from debugtrace.export.otel import span_id_hex, to_otlp, trace_id_hex
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent
from debugtrace.results import EditResult, Stage
from debugtrace.storage.sql.schema import traces
from debugtrace.testing import UNTESTED_REASON, example_validation, sample_trace
from support.calc_repo import example_trace, make_calc_repo

DEBUGTRACE = Path(sys.executable).parent / "debugtrace"


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``debugtrace`` command, as users run it."""
    env = {**os.environ, "DEBUGTRACE_DATABASE_URL": db_url}
    return subprocess.run(
        [str(DEBUGTRACE), *args], capture_output=True, text=True, env=env, timeout=120
    )


def rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# -- the done-criterion: a finalized trace, exported through the CLI ------------------------------


@pytest.fixture
def finalized(tmp_path: Path, settings: Settings) -> tuple[str, Trace]:
    """The calc example, finalized for real (local sandbox, offline grader): (database, trace)."""
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    local = settings.model_copy(
        update={"allow_local_repos": True, "sandbox": "local", "grader": "heuristic"}
    )
    with Collector(settings=local) as c:
        trace = c.finalize(str(c.submit(example_trace(repo)).id))
    assert trace.result.validation is not None and trace.result.validation.fix_validated
    return settings.sqlalchemy_url(), trace


def test_jsonl_rows_hold_the_steps_and_the_fix_as_assistant_turns(
    finalized: tuple[str, Trace],
) -> None:
    db, trace = finalized
    proc = run_cli(db, "export", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "exported 1 trace\n"  # stderr is not a terminal: no progress bar
    [row] = rows(proc.stdout)
    assert set(row) == {"messages", "tools", "metadata"}
    msgs = row["messages"]

    # A system prompt, then the task as the user states it.
    assert [m["role"] for m in msgs[:2]] == ["system", "user"]
    assert "debugging assistant" in msgs[0]["content"]
    assert trace.bug_description in msgs[1]["content"]
    # A local repository is named, not located: no host path reaches a training row.
    assert "Repository: calc\n" in msgs[1]["content"]
    assert str(trace.repo_url) not in json.dumps(row["messages"])

    # Then the session: the hypothesis is the text of the assistant turn that runs the command,
    # whose result comes back as a tool message; the fix is an edit_file call with the diff.
    roles = [m["role"] for m in msgs[2:]]
    assert roles == ["assistant", "tool", "assistant", "tool", "assistant"]
    run, ran, fix, fixed, last = msgs[2:]
    assert run["content"].startswith("Hypothesis (confidence medium): The crash mentions")
    [call] = run["tool_calls"]
    assert call["type"] == "function" and call["id"] == "call_2"
    assert call["function"]["name"] == "run_command"
    assert json.loads(call["function"]["arguments"]) == {"command": "pytest -x tests/test_calc.py"}
    assert ran == {  # the example records no exit code: nothing is said about it
        "role": "tool",
        "tool_call_id": "call_2",
        "content": "FAILED tests/test_calc.py::test_divide_by_zero - ZeroDivisionError",
    }
    assert "content" not in fix  # no thought right before it
    [edit] = fix["tool_calls"]
    assert edit["function"]["name"] == "edit_file"
    assert json.loads(edit["function"]["arguments"]) == {
        "path": "calc.py",
        "diff": trace.events[2].details.diff,  # type: ignore[union-attr]
    }
    assert fixed == {"role": "tool", "tool_call_id": "call_3", "content": "applied to calc.py"}
    assert last == {
        "role": "assistant",
        "content": "Conclusion (confidence high): Guard added; the failing test should now pass "
        "and nothing else should change",
    }
    assert [t["function"]["name"] for t in row["tools"]] == ["run_command", "edit_file"]

    # The metadata says which trace, who, and what finalize found.
    meta = row["metadata"]
    assert meta["trace_id"] == trace.id
    assert meta["developer_id"] == "dev_042"
    assert meta["fix_validated"] is True
    assert meta["fail_to_pass"] == ["tests/test_calc.py::test_divide_by_zero"]
    assert [g["grader"] for g in meta["grades"]] == ["heuristic"]
    assert meta["score"] == meta["grades"][0]["score"]


def test_min_score_6_exports_nothing(finalized: tuple[str, Trace]) -> None:
    # Grades are 1-5, so no trace reaches 6.
    db, _ = finalized
    proc = run_cli(db, "export", "--format", "jsonl", "--min-score", "6")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "exported 0 traces\n")


# -- how a row is built -----------------------------------------------------------------------


def test_thoughts_before_a_call_are_its_content_and_outputs_keep_head_and_tail() -> None:
    output = "START\n" + "x" * 50_000 + "\nEND"
    trace = sample_trace(
        events=[
            ReasoningEvent.new("the guard is missing", "hypothesis", 0.7),
            ReasoningEvent.new("run the failing test first", "plan"),
            CommandEvent.new("pytest", output=output, exit_code=1, cwd="/src/tests"),
            EditEvent.new("calc.py", "--- a/calc.py\n+++ b/calc.py\n"),
            CommandEvent.new("pytest", output="", exit_code=0, timed_out=True, cwd="/src"),
        ]
    )
    msgs = to_chat(trace, ExportOptions(max_output_bytes=1000))["messages"]
    call = msgs[2]
    assert call["content"] == (
        "Hypothesis (confidence 0.7): the guard is missing\n\nPlan: run the failing test first"
    )
    # The directory is relative to the repository (here "/src", where the commands ran).
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {
        "command": "pytest",
        "cwd": "tests",
    }
    result = msgs[3]["content"]
    assert result.startswith("exit code: 1\nSTART") and result.endswith("END")
    assert len(result.encode()) <= 1000 + len("exit code: 1\n")
    assert "middle cut" in result
    # Events not stored yet have no seq: their position numbers the calls.
    assert [m.get("tool_call_id") for m in msgs if m["role"] == "tool"] == [
        "call_3",
        "call_4",
        "call_5",
    ]
    assert msgs[-2]["content"] == "timed out\n(no output)"


def test_each_event_is_one_call_of_the_tool_the_agent_used() -> None:
    # What the importers write: a shell command; calls of the agent's own tools (details.tool and
    # details.arguments), one of them an edit call whose diff an edit event restates (same call
    # id); a tool result with no exit code; and the final patch.
    diff = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1,2 @@\n x\n+y\n"
    trace = sample_trace(
        events=[
            CommandEvent.new(
                "find_file(file_name='calc.py')",
                output="Found 1 matches",
                tool="find_file",
                arguments={"file_name": "calc.py"},
            ),
            CommandEvent.new("pytest -x", output="1 failed", exit_code=1, cwd="/src"),
            CommandEvent.new(
                "Edit(file_path='calc.py', ...)",
                output="The file calc.py has been updated.",
                tool="Edit",
                arguments={"file_path": "calc.py", "old_string": "x", "new_string": "x\ny"},
                tool_use_id="toolu_1",
            ),
            EditEvent.new("calc.py", diff, tool_use_id="toolu_1"),  # restates the Edit call
            EditEvent.new("calc.py", diff, final_patch=True),
            CommandEvent.new("tool(x)", tool={"name": "bash"}),  # not a tool name: a shell line
        ]
    )
    row = to_chat(trace)
    calls = [
        (
            m["tool_calls"][0]["function"]["name"],
            json.loads(m["tool_calls"][0]["function"]["arguments"]),
        )
        for m in row["messages"]
        if m.get("tool_calls")
    ]
    assert calls == [
        ("find_file", {"file_name": "calc.py"}),
        ("run_command", {"command": "pytest -x"}),  # ran at the repository's root
        ("Edit", {"file_path": "calc.py", "old_string": "x", "new_string": "x\ny"}),
        ("edit_file", {"path": "calc.py", "diff": diff}),  # the final patch, always
        ("run_command", {"command": "tool(x)"}),
    ]
    results = [m["content"] for m in row["messages"] if m["role"] == "tool"]
    assert results[:3] == [
        "Found 1 matches",  # no exit code known: none is claimed
        "exit code: 1\n1 failed",
        "The file calc.py has been updated.",
    ]
    # Every tool called has a schema: the two of debugtrace's, then the agent's, with the
    # argument names the trace used.
    assert [t["function"]["name"] for t in row["tools"]] == [
        "run_command",
        "edit_file",
        "find_file",
        "Edit",
    ]
    assert row["tools"][3]["function"]["parameters"] == {
        "type": "object",
        "properties": {"file_path": {}, "old_string": {}, "new_string": {}},
    }


def test_what_the_agent_did_not_write_is_a_user_message() -> None:
    # A later prompt (speaker user) and a harness's feedback (speaker environment, as the ATIF
    # importer writes a parser error) are not the assistant's words.
    trace = sample_trace(
        events=[
            ReasoningEvent.new("I will write the file."),
            ReasoningEvent.new(
                "Missing required fields: plan", "observation", speaker="environment"
            ),
            ReasoningEvent.new("Also handle b == 0", speaker="user"),
            ReasoningEvent.new("Done."),
        ]
    )
    msgs = to_chat(trace)["messages"][2:]
    assert msgs == [
        {"role": "assistant", "content": "I will write the file."},
        {"role": "user", "content": "Missing required fields: plan"},
        {"role": "user", "content": "Also handle b == 0"},
        {"role": "assistant", "content": "Done."},
    ]


def test_an_edit_finalize_could_not_apply_says_so() -> None:
    trace = sample_trace()
    trace.events[2].seq = 3
    trace.result.edits = [
        EditResult(seq=3, file="calc.py", status="failed", message="patch does not apply")
    ]
    msgs = to_chat(trace)["messages"]
    assert msgs[-2] == {
        "role": "tool",
        "tool_call_id": "call_3",
        "content": "failed (calc.py): patch does not apply",
    }
    # A row ends with the assistant: here a closing turn made from the trace, which no one
    # wrote, so it is not learned (weight 0).
    assert msgs[-1] == {"role": "assistant", "content": "Done: changed calc.py.", "weight": 0}


def test_no_metadata_gives_the_strict_openai_upload_shape(collector: Collector) -> None:
    collector.submit(sample_trace())
    out = io.StringIO()
    assert collector.export("jsonl", out, metadata=False) == 1
    [row] = rows(out.getvalue())
    assert set(row) == {"messages", "tools"}
    assert row["tools"] == TOOLS
    for m in row["messages"]:
        assert set(m) <= {"role", "content", "tool_calls", "tool_call_id", "weight"}


# -- filters and the score rule ---------------------------------------------------------------


def grade(grader: str, score: int) -> Grade:
    return Grade(score=score, grader=grader, summary="s", rubric_version="r1")


def seed(
    c: Collector,
    developer: str,
    *,
    validated: bool | None = None,
    grades: tuple[Grade, ...] = (),
    created_at: datetime | None = None,
) -> str:
    """A stored trace with the given verdict and grades, as finalize would leave them."""
    tid = str(c.submit(sample_trace(developer, created_at=created_at)).id)
    if validated is not None or grades:
        v = example_validation(validated) if validated is not None else None
        c.storage.save_result(tid, TraceResult(validation=v, grades=list(grades)))
        c.storage.set_status(tid, "finalized")
    return tid


@pytest.fixture
def store(collector: Collector) -> dict[str, str]:
    """Four traces, named by what sets them apart."""
    c = collector
    return {
        "old": seed(c, "ann", created_at=datetime(2024, 5, 1, tzinfo=UTC)),
        "good": seed(c, "ann", validated=True, grades=(grade("heuristic", 5), grade("openai", 4))),
        "split": seed(c, "bob", validated=True, grades=(grade("heuristic", 5), grade("openai", 2))),
        "failed": seed(c, "bob", validated=False, grades=(grade("heuristic", 2),)),
    }


def exported(
    capsys: pytest.CaptureFixture[str], collector: Collector, *args: str
) -> list[str | None]:
    """Trace ids exported by ``debugtrace export ARGS`` (run in-process), newest first; these
    stores hold copies of one sample trace, so duplicates are kept unless ARGS say otherwise."""
    url = collector.settings.sqlalchemy_url()
    assert main(["--database-url", url, "export", "--no-dedup", *args]) == 0
    out = capsys.readouterr().out
    return [r["metadata"]["trace_id"] for r in rows(out)]


def test_each_filter(
    capsys: pytest.CaptureFixture[str], collector: Collector, store: dict[str, str]
) -> None:
    def ids(*names: str) -> list[str]:
        return [store[n] for n in names]

    assert exported(capsys, collector) == ids("failed", "split", "good", "old")  # newest first
    assert exported(capsys, collector, "--developer", "ann") == ids("good", "old")
    assert exported(capsys, collector, "--since", "2025-01-01") == ids("failed", "split", "good")
    assert exported(capsys, collector, "--since", "2024-05-01T00:00:00+02:00") == ids(
        "failed", "split", "good", "old"
    )
    assert exported(capsys, collector, "--validated-only") == ids("split", "good")
    assert exported(capsys, collector, "--grader", "openai") == ids("split", "good")
    assert exported(capsys, collector, "--min-score", "2") == ids("failed", "split", "good")
    assert exported(capsys, collector, "--validated-only", "--developer", "bob") == ids("split")


def test_the_score_is_the_lowest_grader_unless_one_is_named(
    capsys: pytest.CaptureFixture[str], collector: Collector, store: dict[str, str]
) -> None:
    # "split" has heuristic 5 and openai 2: every grader must rate it 4, so it is out ...
    assert exported(capsys, collector, "--min-score", "4") == [store["good"]]
    # ... unless the score is the heuristic grader's alone.
    assert exported(capsys, collector, "--min-score", "4", "--grader", "heuristic") == [
        store["split"],
        store["good"],
    ]
    # A later grade by the same grader replaces the earlier one.
    later = seed(
        collector, "cy", validated=True, grades=(grade("heuristic", 1), grade("heuristic", 5))
    )
    assert exported(capsys, collector, "--min-score", "5", "--developer", "cy") == [later]
    # The row's score follows the same rule.
    assert (
        main(["--database-url", collector.settings.sqlalchemy_url(), "export", "--no-dedup"]) == 0
    )
    scores = {
        r["metadata"]["trace_id"]: r["metadata"]["score"] for r in rows(capsys.readouterr().out)
    }
    assert (scores[store["split"]], scores[store["good"]], scores[store["old"]]) == (2, 4, None)


def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--database-url", collector.settings.sqlalchemy_url()]

    def error(*args: str) -> str:
        try:
            code = main([*db, "export", *args])
        except SystemExit as exc:  # argparse's own checks
            code = int(str(exc.code))
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")
        return err

    assert "--since 'last week' is not a date" in error("--since", "last week")
    assert "--output /no/such/dir/x.jsonl: no such directory" in error(
        "--output", "/no/such/dir/x.jsonl"
    )
    assert "invalid int value" in error("--min-score", "high")
    # Parquet needs the optional pyarrow; without it the message says what to install.
    missing = replace(FORMATS["parquet"], requires=("pyarrow_is_not_installed",))
    monkeypatch.setitem(FORMATS, "parquet", missing)
    assert "pip install 'debugtrace-collector[parquet]'" in error(
        "--format", "parquet", "-o", "x.parquet"
    )


def test_the_cli_offers_every_registered_format() -> None:
    from debugtrace.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["export"]).format is None  # jsonl; parquet with --layout hf
    for name in FORMATS:
        assert parser.parse_args(["export", "--format", name]).format == name


# -- Parquet and OpenTelemetry ----------------------------------------------------------------


def test_parquet_has_one_row_per_trace(
    collector: Collector, store: dict[str, str], tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "traces.parquet"
    assert collector.export("parquet", path) == 4
    table = pq.read_table(path)
    assert table.num_rows == 4
    by_id = {r["trace_id"]: r for r in table.to_pylist()}
    split = by_id[store["split"]]
    assert split["developer_id"] == "bob"
    assert (split["n_events"], split["n_reasoning"], split["n_commands"], split["n_edits"]) == (
        3,
        1,
        1,
        1,
    )
    assert split["n_failed_commands"] == 1
    assert split["fix_validated"] is True
    assert split["fail_to_pass"] == ["tests/test_calc.py::test_divide_by_zero"]
    assert split["n_fail_to_pass"] == 1
    assert split["score"] == 2
    assert {s["grader"]: s["score"] for s in split["scores"]} == {"heuristic": 5, "openai": 2}
    assert split["created_at"].tzinfo is not None
    # The conversation is a list of messages, as chat templates read it; tools are JSON text.
    assert split["messages"][0]["role"] == "system"
    assert json.loads(split["tools"])[0]["function"]["name"] == "run_command"
    old = by_id[store["old"]]
    assert (old["fix_validated"], old["score"], old["scores"]) == (None, None, [])


def test_parquet_is_written_in_row_groups(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from debugtrace.export import parquet

    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    for _ in range(5):
        collector.submit(sample_trace("d"))
    path = tmp_path / "t.parquet"
    assert collector.export("parquet", path) == 5
    assert pq.ParquetFile(path).metadata.num_row_groups == 3


def attrs(span_or_event: dict[str, Any]) -> dict[str, Any]:
    """OTLP attributes as a plain dict (each AnyValue unwrapped)."""
    out = {}
    for a in span_or_event["attributes"]:
        [(kind, value)] = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


def test_otel_lines_are_otlp_json_genai_spans(collector: Collector, store: dict[str, str]) -> None:
    out = io.BytesIO()
    assert collector.export("otel", out, developer_id="bob") == 2
    lines = out.getvalue().decode().splitlines()
    requests = [json.loads(line) for line in lines]
    by_trace = {}
    for req in requests:
        [rs] = req["resourceSpans"]
        assert attrs(rs["resource"]) == {"service.name": "debugtrace"}
        [scope] = rs["scopeSpans"]
        assert scope["scope"]["name"] == "debugtrace.export"
        spans = scope["spans"]
        root = spans[0]
        by_trace[attrs(root)["gen_ai.conversation.id"]] = spans

    spans = by_trace[store["split"]]
    root, *tools = spans
    # One invoke_agent span per trace; the ids are hex, derived from the trace id.
    assert root["name"] == "invoke_agent bob" and root["kind"] == 1
    assert "parentSpanId" not in root
    assert root["traceId"] == trace_id_hex(store["split"])
    assert root["spanId"] == span_id_hex(store["split"], "root")
    for s in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and s["traceId"] == root["traceId"]
        assert re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0
    assert len({s["spanId"] for s in spans}) == len(spans)
    ra = attrs(root)
    assert ra["gen_ai.operation.name"] == "invoke_agent"
    assert ra["gen_ai.agent.name"] == "bob"
    assert ra["gen_ai.provider.name"] == "unknown"
    assert ra["debugtrace.fix_validated"] is True
    assert ra["debugtrace.score"] == 2
    assert ra["debugtrace.grade.openai"] == 2
    assert root["status"] == {"code": 1}
    # The reasoning is a span event on it.
    [thought] = root["events"]
    assert thought["name"] == "debugtrace.reasoning"
    assert attrs(thought)["debugtrace.reasoning.text"] == "no guard for b == 0"

    # A child execute_tool span per command and edit.
    assert [s["name"] for s in tools] == ["execute_tool run_command", "execute_tool edit_file"]
    assert all(s["parentSpanId"] == root["spanId"] for s in tools)
    run = attrs(tools[0])
    assert run["gen_ai.operation.name"] == "execute_tool"
    assert run["gen_ai.tool.name"] == "run_command"
    assert run["gen_ai.tool.call.id"] == "call_2"
    assert json.loads(run["gen_ai.tool.call.arguments"]) == {"command": "pytest -x"}
    assert run["gen_ai.tool.call.result"] == "FAILED test_divide_by_zero"
    assert run["process.exit.code"] == 1
    assert tools[0]["status"] == {"code": 2, "message": "exit code 1"}
    assert attrs(tools[1])["gen_ai.tool.call.id"] == "call_3"

    # Not validated: the root span says so.
    failed_root = by_trace[store["failed"]][0]
    assert failed_root["status"]["code"] == 2

    # Exporting again gives the same ids.
    again = io.BytesIO()
    collector.export("otel", again, developer_id="bob")
    assert again.getvalue() == out.getvalue()


def test_otel_names_an_agent_tool_call_after_the_tool() -> None:
    trace = sample_trace(
        events=[CommandEvent.new("open(path='a.py')", tool="open", arguments={"path": "a.py"})]
    )
    trace.id = "t1"
    [_, span] = to_otlp(trace)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert span["name"] == "execute_tool open"
    a = attrs(span)
    assert a["gen_ai.tool.name"] == "open"
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {"path": "a.py"}
    assert "process.exit.code" not in a  # unknown
    assert span["status"] == {"code": 0}


def test_otel_span_times_follow_the_events() -> None:
    trace = sample_trace()
    trace.id = "t1"
    start = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)
    trace.events[0].timestamp = start
    cmd = trace.events[1]
    cmd.timestamp = datetime(2025, 3, 2, 9, 1, tzinfo=UTC)
    cmd.details.duration_s = 2.5  # type: ignore[union-attr]
    trace.events[2].timestamp = datetime(2025, 3, 2, 9, 2, tzinfo=UTC)
    root, run, edit = to_otlp(trace)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ns = 1_000_000_000
    t0 = int(start.timestamp()) * ns
    assert int(run["startTimeUnixNano"]) == t0 + 60 * ns
    assert int(run["endTimeUnixNano"]) == t0 + 62 * ns + ns // 2
    assert int(root["startTimeUnixNano"]) == t0
    assert int(edit["startTimeUnixNano"]) == int(edit["endTimeUnixNano"]) == t0 + 120 * ns
    assert int(root["endTimeUnixNano"]) == t0 + 120 * ns
    assert root["status"] == {"code": 0}  # never finalized


# -- fixes that could not be tested, and earlier runs -----------------------------------------


@pytest.fixture
def honest(collector: Collector) -> dict[str, str]:
    """A validated trace, one that could not be tested (graded high all the same), and one
    validated before a later finalize failed at the clone."""
    c = collector
    untested = TraceResult(
        stages=[Stage(name="tests", status="failed", message=UNTESTED_REASON)],
        validation=example_validation(None),
        grades=[grade("heuristic", 5)],
    )
    gone = TraceResult(stages=[Stage(name="workspace", status="failed", message="clone failed")])
    earlier = TraceResult(validation=example_validation(True), grades=[grade("heuristic", 4)])
    ids = {
        "good": seed(c, "dan", validated=True, grades=(grade("heuristic", 4),)),
        "untested": str(c.submit(sample_trace("dan")).id),
        "regone": str(c.submit(sample_trace("dan")).id),
    }
    c.storage.save_result(ids["untested"], untested)
    c.storage.save_result(ids["regone"], earlier.with_run(gone))
    return ids


def test_untested_fixes_are_left_out_of_validated_only_and_min_score(
    capsys: pytest.CaptureFixture[str], collector: Collector, honest: dict[str, str]
) -> None:
    every = exported(capsys, collector, "--developer", "dan")
    assert every == [honest["regone"], honest["untested"], honest["good"]]
    validated = [honest["regone"], honest["good"]]  # the earlier verdict stands
    assert exported(capsys, collector, "--developer", "dan", "--validated-only") == validated
    assert exported(capsys, collector, "--developer", "dan", "--min-score", "1") == validated
    # ... unless asked for by name: then on their score like the rest.
    assert (
        exported(capsys, collector, "--developer", "dan", "--min-score", "1", "--include-untested")
        == every
    )
    # --include-untested changes only --min-score, so alone it is a mistake to say so.
    code = main(
        ["--database-url", collector.settings.sqlalchemy_url(), "export", "--include-untested"]
    )
    assert code == 2
    assert "--include-untested only changes --min-score" in capsys.readouterr().err


def test_a_graded_trace_no_test_judged_is_left_out_of_min_score_unless_asked(
    capsys: pytest.CaptureFixture[str], collector: Collector
) -> None:
    # an imported session graded by the rubric, never finalized against tests
    graded = seed(collector, "ivy", grades=(grade("heuristic", 4),))
    assert exported(capsys, collector, "--developer", "ivy", "--min-score", "3") == []
    args = ("--developer", "ivy", "--min-score", "3", "--include-untested")
    assert exported(capsys, collector, *args) == [graded]


def test_jsonl_says_could_not_test_with_fix_validated_null(
    collector: Collector, honest: dict[str, str]
) -> None:
    out = io.BytesIO()
    collector.export("jsonl", out, developer_id="dan")
    meta = {r["metadata"]["trace_id"]: r["metadata"] for r in rows(out.getvalue().decode())}
    untested = meta[honest["untested"]]
    assert (untested["fix_validated"], untested["could_not_test"]) == (None, UNTESTED_REASON)
    assert untested["environment"].startswith("python 3.12.3")
    good = meta[honest["good"]]
    assert (good["fix_validated"], good["could_not_test"]) == (True, None)
    # The latest complete run is the verdict, with its score.
    regone = meta[honest["regone"]]
    assert (regone["fix_validated"], regone["could_not_test"], regone["score"]) == (True, None, 4)


def test_parquet_has_a_could_not_test_column(
    collector: Collector, honest: dict[str, str], tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "traces.parquet"
    collector.export("parquet", path, developer_id="dan")
    by_id = {r["trace_id"]: r for r in pq.read_table(path).to_pylist()}
    assert (
        by_id[honest["untested"]]["fix_validated"],
        by_id[honest["untested"]]["could_not_test"],
    ) == (
        None,
        UNTESTED_REASON,
    )
    assert by_id[honest["good"]]["could_not_test"] is None


def test_otel_leaves_an_untested_fix_unset_never_error(
    collector: Collector, honest: dict[str, str]
) -> None:
    out = io.BytesIO()
    collector.export("otel", out, developer_id="dan")
    roots = {}
    for line in out.getvalue().decode().splitlines():
        root = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        roots[attrs(root)["gen_ai.conversation.id"]] = root
    untested = roots[honest["untested"]]
    assert untested["status"] == {"code": 0}
    assert attrs(untested)["debugtrace.could_not_test"] == UNTESTED_REASON
    assert "debugtrace.fix_validated" not in attrs(untested)  # null attributes are left out
    assert roots[honest["regone"]]["status"] == {"code": 1}


# -- the Python API ---------------------------------------------------------------------------


def test_collector_streams_traces_and_writes_exports(
    collector: Collector, store: dict[str, str], tmp_path: Path
) -> None:
    streamed = list(collector.iter_traces(validated_only=True))
    assert [t.id for t in streamed] == [store["split"], store["good"]]
    assert streamed[0] == collector.get(store["split"])  # whole traces: events and results

    # To a path (replaced only when the export succeeds), a binary or a text stream.
    path = tmp_path / "out.jsonl"
    seen: list[int] = []
    assert collector.export("jsonl", path, min_score=4, progress=seen.append) == 1
    assert seen == [1]
    assert len(path.read_text().splitlines()) == 1
    text = io.StringIO()
    assert collector.export("otel", text, developer_id="ann") == 2
    assert len(text.getvalue().splitlines()) == 2
    with pytest.raises(ExportError, match="binary"):
        collector.export("parquet", io.StringIO())
    with pytest.raises(ExportError, match="unknown export format 'xml'"):
        collector.export("xml", path)
    assert len(path.read_text().splitlines()) == 1  # untouched


def test_sql_storage_reads_events_in_bounded_groups(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events are read for several traces at once, up to a budget of events; a trace bigger than
    # the budget is read alone. Whatever the grouping, every trace comes out whole.
    from debugtrace.storage.sql.storage import SQLStorage

    monkeypatch.setattr(SQLStorage, "EXPORT_EVENTS_PER_READ", 4)
    small = [str(collector.submit(sample_trace("g")).id) for _ in range(3)]
    big = str(collector.submit(sample_trace("g")).id)
    collector.add_events(big, [ReasoningEvent.new(f"step {i}") for i in range(5)])
    streamed = list(collector.iter_traces(developer_id="g"))
    assert [t.id for t in streamed] == [big, *reversed(small)]
    assert streamed == [collector.get(str(t.id)) for t in streamed]
    assert len(streamed[0].events) == 8


def test_a_failed_export_leaves_no_file(
    collector: Collector, store: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(query: Any) -> Iterator[Trace]:
        yield collector.get(store["good"])
        raise RuntimeError("database went away")

    monkeypatch.setattr(collector.storage, "iter_traces", broken)
    with pytest.raises(RuntimeError):
        collector.export("jsonl", tmp_path / "out.jsonl")
    assert not [p.name for p in tmp_path.iterdir() if "out.jsonl" in p.name]


# -- memory stays flat: 100,000 traces streamed from the database ------------------------------


def bulk_insert(db_url: str, n: int) -> None:
    """``n`` small finalized traces (a command and an edit each), inserted in one transaction."""
    from debugtrace.storage.sql.storage import SQLStorage

    storage = SQLStorage(db_url)
    now = datetime(2025, 3, 2, tzinfo=UTC)
    result = TraceResult(validation=example_validation(True), grades=[grade("heuristic", 4)])
    result_json = result.model_dump_json()
    trace_rows = [
        {
            "id": f"{i:024x}",
            "developer_id": "bulk",
            "repo_url": "https://github.com/example/calc",
            "bug_description": "divide() crashes on zero",
            "status": "finalized",
            "created_at": now,
            "updated_at": now,
            "event_count": 2,
            "metadata": "{}",
            "result": result_json,
            # The verdict columns, as save_result writes them (the export filters read them).
            "validated": True,
            "score": 4,
        }
        for i in range(n)
    ]
    us = 1_740_873_600_000_000
    cmd = '{"command":"pytest -x","output":"FAILED test_divide_by_zero","exit_code":1}'
    diff = '{"file":"calc.py","diff":"--- a/calc.py\\n+++ b/calc.py\\n@@ -1 +1,2 @@\\n x\\n+y\\n"}'
    event_rows = [
        (f"{i:024x}", seq, kind, us + i, details)
        for i in range(n)
        for seq, kind, details in ((1, "command", cmd), (2, "edit", diff))
    ]
    with storage.engine.begin() as conn:
        conn.execute(traces.insert(), trace_rows)
        conn.exec_driver_sql(
            "INSERT INTO events (trace_id, seq, type, timestamp, details) VALUES (?, ?, ?, ?, ?)",
            event_rows,
        )
    storage.close()


class _Discard(io.RawIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.bytes += len(data)
        return len(data)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_memory_stays_flat_over_100k_traces(sqlite_url: str, settings: Settings) -> None:
    n = 100_000
    bulk_insert(sqlite_url, n)
    rss: dict[int, int] = {}

    def probe(count: int) -> None:
        if count % 5_000 == 0:
            rss[count] = _rss()

    out = _Discard()
    with Collector(settings=settings) as c:
        start = time.perf_counter()
        assert c.export("jsonl", out, validated_only=True, min_score=4, progress=probe) == n
        took = time.perf_counter() - start
    # Hundreds of megabytes went out; the process grew by (next to) nothing after 10,000 traces.
    grown = max(rss.values()) - rss[10_000]
    print(f"\n{n / took:,.0f} traces/s, {out.bytes / 1e6:.0f} MB, RSS +{grown / 1e6:.1f} MB")
    assert out.bytes > 150_000_000
    assert grown < 20_000_000, {k: v // 1_000_000 for k, v in rss.items()}
