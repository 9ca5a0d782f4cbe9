"""Training data an ML engineer can use as is: every exported row is a valid OpenAI fine-tuning
example, the Parquet file and the ``--layout hf`` folder load with Hugging Face ``datasets``, and
the filters a data pipeline needs (repository, source, model, limit, duplicates) hold.

The traces are real: every agent trajectory fixture under ``tests/data/importers`` (SWE-agent,
OpenHands, Claude Code, Codex, Gemini CLI, mini-swe-agent, ATIF), imported through the CLI, each
format under its own repository, plus the calc example finalized for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Collector, Settings
from debugtrace.cli import main
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent
from debugtrace.testing import sample_trace
from support.calc_repo import example_trace, make_calc_repo
from support.finetune import problems

datasets = pytest.importorskip("datasets", reason="needs Hugging Face datasets (the dev extra)")

FIXTURES = Path(__file__).parent.parent / "data" / "importers"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of every real fixture (one repository per agent) and a finalized fix."""
    root = tmp_path_factory.mktemp("training")
    url = f"sqlite:///{root / 'traces.db'}"
    for fixture in sorted(FIXTURES.iterdir()):
        repo = f"https://github.com/example/{fixture.name}"
        assert main(["--database-url", url, "import", "--repo", repo, str(fixture)]) == 0
    settings = Settings(
        database_url=url,
        data_dir=root / "data",
        allow_local_repos=True,
        sandbox="local",
        grader="heuristic",
    )
    calc = root / "calc"
    make_calc_repo(calc)
    with Collector(settings=settings) as c:
        c.finalize(str(c.submit(example_trace(calc)).id))
    return url


def export(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["--database-url", url, "export", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets as on an air-gapped training machine: no Hub (each load also gets a cache of
    its own: datasets reads HF_HOME once, at import)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_every_row_is_a_valid_openai_fine_tuning_example(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    rows = export(capsys, store, "--no-metadata", "--no-dedup")
    assert len(rows) >= 20
    for row in rows:
        assert problems(row) == [], row["messages"][1]["content"][:200]
        assert row["messages"][-1]["role"] == "assistant"
    text = json.dumps(rows)
    # nothing of the recording machine, nothing of how debugtrace recorded
    assert "/tmp/" not in text and "--debugtrace" not in text
    diffs = [
        json.loads(call["function"]["arguments"])["diff"]
        for row in rows
        for m in row["messages"]
        for call in m.get("tool_calls") or []
        if call["function"]["name"] == "edit_file"
    ]
    assert diffs
    assert not any(
        line.startswith(("diff --git", "index ")) for d in diffs for line in d.split("\n")
    )


def test_rows_say_how_many_tokens_they_hold_and_the_commit_finalize_resolved(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    pytest.importorskip("tiktoken", reason="token counts need tiktoken (the tokens extra)")
    [calc] = export(capsys, store, "--repo", "calc")
    meta = calc["metadata"]
    assert meta["base_commit"] and len(meta["base_commit"]) == 40
    assert f"Base commit: {meta['base_commit']}" in calc["messages"][1]["content"]
    assert 200 < meta["n_tokens"] < 20_000
    assert meta["fix_validated"] is True


def test_the_parquet_file_loads_in_datasets_as_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    out = tmp_path / "traces.parquet"
    export(capsys, store, "--format", "parquet", "-o", str(out), "--no-dedup")
    ds = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert ds.num_rows >= 20
    row = ds[0]
    # a conversation chat templates read: a list of messages, not a JSON string
    assert row["messages"][0]["role"] == "system"
    assert any(m["tool_calls"] for m in row["messages"])
    assert json.loads(row["tools"])[0]["function"]["name"] == "run_command"
    assert {s["grader"] for r in ds for s in r["scores"]} >= {"heuristic"}


def test_the_hf_layout_is_a_dataset_with_no_repository_in_both_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    out = tmp_path / "dataset"
    export(capsys, store, "--layout", "hf", "-o", str(out), "--test-fraction", "0.3", "--no-dedup")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:\n- config_name: default\n")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}
    repos = {split: {r["repo_url"] for r in loaded[split]} for split in loaded}
    assert repos["train"] and repos["test"] and not repos["train"] & repos["test"]
    rows_line = f"| Rows | {loaded['train'].num_rows} | {loaded['test'].num_rows} |"
    assert rows_line in card, (rows_line, card)
    assert loaded["train"].num_rows + loaded["test"].num_rows >= 20


def test_an_hf_export_needs_a_new_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    (tmp_path / "old.txt").write_text("keep me")
    code = main(["--database-url", store, "export", "--layout", "hf", "-o", str(tmp_path)])
    assert code == 2
    assert "new or empty directory" in capsys.readouterr().err
    assert (tmp_path / "old.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    code = main(["--database-url", store, "export", "--layout", "hf", "-o", str(tmp_path / "link")])
    assert code == 2
    assert "a symbolic link" in capsys.readouterr().err
    for fmt in ("otel", "jsonl"):  # both splits need one schema: Parquet's
        code = main(
            ["--database-url", store, "export", "--layout", "hf", "--format", fmt, "-o", "x"]
        )
        assert code == 2
        assert "--layout hf writes parquet" in capsys.readouterr().err


def test_filters_by_repository_source_model_and_limit(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    def repos(*args: str) -> set[str]:
        return {r["metadata"]["repo_url"] for r in export(capsys, store, "--no-dedup", *args)}

    assert repos("--repo", "SWE-AGENT") == {
        "https://github.com/example/swe-agent",
        "https://github.com/example/mini-swe-agent",
    }
    assert repos("--source", "swe-agent") == {"https://github.com/example/swe-agent"}
    assert repos("--source", "openhands") == {"https://github.com/example/openhands"}
    claude = export(capsys, store, "--model", "claude")
    assert claude and all("claude" in r["metadata"]["model"] for r in claude)
    assert len(export(capsys, store, "--limit", "3")) == 3


def test_duplicates_are_the_same_bug_with_the_same_net_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'dups.db'}"
    fix = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return a / b\n+    return a // b\n"
    wrong = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return a / b\n+    return 0\n"
    undo = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return 0\n+    return a / b\n"
    with Collector(settings=Settings(database_url=url, data_dir=tmp_path)) as c:
        c.submit(sample_trace(events=[EditEvent.new("calc.py", fix)]))
        # another session reached the same fix after an attempt it undid: the same example
        detour = c.submit(
            sample_trace(events=[EditEvent.new("calc.py", d) for d in (wrong, undo, fix)])
        )
        other = c.submit(sample_trace(events=[EditEvent.new("calc.py", wrong)]))
    capsys.readouterr()
    assert main(["--database-url", url, "export"]) == 0
    out, err = capsys.readouterr()
    # newest first, and the newest of each duplicate set stays
    assert [json.loads(r)["metadata"]["trace_id"] for r in out.splitlines()] == [
        other.id,
        detour.id,
    ]
    assert err == "exported 2 traces (1 duplicate left out)\n"
    assert len(export(capsys, url, "--no-dedup")) == 3


def test_a_dead_end_edit_is_context_not_a_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return a / b\n+    return 0\n"
    undo = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return 0\n+    return a / b\n"
    fix = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-    return a / b\n+    return a // b\n"
    trace = sample_trace(
        events=[
            ReasoningEvent.new("maybe the division should just return 0", "hypothesis", 0.3),
            EditEvent.new("calc.py", wrong),
            CommandEvent.new("pytest", output="1 failed", exit_code=1),
            EditEvent.new("calc.py", undo),
            EditEvent.new("calc.py", fix),
            CommandEvent.new("pytest", output="3 passed", exit_code=0),
        ]
    )
    from debugtrace.export.chat import to_chat

    row = to_chat(trace)
    weights = [
        (json.loads(m["tool_calls"][0]["function"]["arguments"]).get("diff"), m.get("weight", 1))
        for m in row["messages"]
        if m.get("tool_calls")
    ]
    assert (wrong, 0) in weights and (fix, 1) in weights
    assert row["metadata"]["dead_ends"] == {"2": "undone by edit #4"}
    assert problems({k: row[k] for k in ("messages", "tools")}) == []


def test_duplicates_need_the_same_change_in_the_same_place() -> None:
    from debugtrace.export.select import fix_key

    def key(*diffs: str) -> str:
        return fix_key(sample_trace(events=[EditEvent.new("geo.py", d) for d in diffs]))

    in_area = (
        "--- a/geo.py\n+++ b/geo.py\n@@ -3 +3 @@ def area(w, h):\n"
        "-    return w + h\n+    return w * h\n"
    )
    in_perimeter = in_area.replace("def area", "def perimeter")
    assert key(in_area) != key(in_perimeter)
    # an SQL comment removed is a change, not a header
    sql = "--- a/q.sql\n+++ b/q.sql\n@@ -1 +1 @@\n--- old note\n+-- new note\n"
    assert key(sql) != key()
    # two sessions that each tried something and undid it are two examples, not one
    undo = in_area.replace(
        "-    return w + h\n+    return w * h", "-    return w * h\n+    return w + h"
    )
    tried = sample_trace(events=[EditEvent.new("geo.py", in_area), EditEvent.new("geo.py", undo)])
    other = sample_trace(events=[CommandEvent.new("pytest", output="1 failed", exit_code=1)])
    assert fix_key(tried) != fix_key(other)


def test_a_harness_crash_and_a_made_up_closing_turn_are_not_lessons(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    # mini-swe-agent's pvlib run ended on an API error (its "exit" message): not the agent's words
    rows = export(capsys, store, "--source", "mini-swe-agent", "--no-dedup")
    said = [m.get("content") or "" for r in rows for m in r["messages"] if m["role"] != "tool"]
    assert rows and not any("InternalServerError" in text for text in said)
    # a closing turn debugtrace had to add is context only
    for row in rows:
        last = row["messages"][-1]
        if last["content"].startswith("Done"):
            assert last["weight"] == 0


def test_the_rules_checker_catches_what_openai_refuses() -> None:
    # the checker the tests above rely on, shown failing on rows that break each rule
    from debugtrace.export.chat import TOOLS

    def call(cid: str, name: str, args: str) -> dict[str, Any]:
        fn = {"name": name, "arguments": args}
        return {
            "role": "assistant",
            "tool_calls": [{"id": cid, "type": "function", "function": fn}],
        }

    head = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    end = [{"role": "assistant", "content": "done"}]
    answer = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    ok = {"messages": [*head, call("c1", "run_command", '{"command": "ls"}'), answer, *end]}
    assert problems({**ok, "tools": TOOLS}) == []
    broken = {
        "unanswered": [*head, call("c1", "run_command", '{"command": "ls"}'), *end],
        "not JSON": [*head, call("c1", "run_command", "ls -la"), answer, *end],
        "schema": [*head, call("c1", "run_command", '{"cmd": "ls"}'), answer, *end],
        "unknown tool": [*head, call("c1", "rm_rf", "{}"), answer, *end],
        "ends on a tool": [*head, call("c1", "run_command", '{"command": "ls"}'), answer],
        "weight on user": [*head, {"role": "user", "content": "x", "weight": 0}, *end],
    }
    for why, messages in broken.items():
        assert problems({"messages": messages, "tools": TOOLS}), why


def test_dpo_says_how_many_pairs_it_wrote_and_why_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    # the fixtures hold one attempt per bug, so there is nothing to pair: the CLI says why
    out = tmp_path / "pairs.jsonl"
    capsys.readouterr()
    assert main(["--database-url", store, "export", "--format", "dpo", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "0 preference pairs\na pair needs two traces of one bug" in err
