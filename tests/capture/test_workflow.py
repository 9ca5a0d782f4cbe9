"""The command-line workflow: start, exec, note, diff, stop — a red -> edit -> green session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.calc_repo import make_calc_repo
from support.server_process import run_cli, server_env

FIXED = (
    "def divide(a, b):\n    if b == 0:\n        raise ValueError('division by zero')\n"
    "    return a / b\n"
)


def dt(repo: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(tmp / "data", f"sqlite:///{tmp / 'wf.db'}", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return run_cli(env, *args, cwd=repo, timeout=300)


def test_a_red_edit_green_session_becomes_one_trace(tmp_path: Path) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    started = dt(repo, tmp_path, "start", "--bug", "divide(1, 0) raises ZeroDivisionError")
    assert started.returncode == 0, started.stderr
    trace_id = started.stdout.strip()

    note = dt(
        repo, tmp_path, "note", "no guard for b == 0", "--type", "hypothesis", "--confidence", "0.6"
    )
    assert note.returncode == 0, note.stderr
    red = dt(
        repo, tmp_path, "exec", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"
    )
    assert red.returncode == 1  # the command's own exit code
    assert "test_divide_by_zero" in red.stdout  # streamed to the terminal as it ran
    (repo / "calc.py").write_text(FIXED)
    diff = dt(repo, tmp_path, "diff")
    assert diff.returncode == 0, diff.stderr
    assert "calc.py" in diff.stderr
    green = dt(
        repo,
        tmp_path,
        "exec",
        trace_id,
        "--",
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    assert green.returncode == 0
    stop = dt(repo, tmp_path, "stop", "--finalize")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "fail_to_pass (1): tests/test_calc.py::test_divide_by_zero" in stop.stdout

    doc = json.loads(dt(repo, tmp_path, "show", trace_id, "--json").stdout)
    kinds = [e["type"] for e in doc["events"]]
    assert kinds == ["reasoning", "command", "edit", "command"]
    assert doc["events"][0]["details"]["confidence"] == 0.6
    assert doc["events"][1]["details"]["exit_code"] == 1
    assert "raise ValueError" in doc["events"][2]["details"]["diff"]
    assert doc["base_commit"]  # HEAD when the session started
    # Stopped: the repository has no open trace any more.
    again = dt(repo, tmp_path, "note", "late thought")
    assert again.returncode == 1
    assert again.stderr.startswith("error: no open trace for")


def test_without_a_session_the_commands_say_how_to_start_one(tmp_path: Path) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    run = dt(repo, tmp_path, "diff")
    assert run.returncode == 1
    assert "debugtrace start --bug" in run.stderr
    outside = dt(tmp_path, tmp_path, "start", "--bug", "x")
    assert outside.returncode == 1
    assert "not inside a git repository" in outside.stderr
