"""Finalize end to end on real git repositories with the local sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.calc_repo import example_trace, git, make_calc_repo


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    return repo


@pytest.fixture
def local(settings: Settings) -> Collector:
    s = settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    return Collector(settings=s)


def stages(trace) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.name: s.status for s in trace.result.stages}


def test_the_example_trace_validates_its_fix(local: Collector, calc: Path) -> None:
    trace = local.submit(example_trace(calc))
    done = local.finalize(str(trace.id))
    assert done.status == "finalized"
    assert stages(done) == {"workspace": "ok", "apply": "ok", "tests": "ok", "grade": "ok"}
    v = done.result.validation
    assert v is not None
    assert v.fail_to_pass == ["tests/test_calc.py::test_divide_by_zero"]
    assert v.pass_to_pass == ["tests/test_calc.py::test_divide"]
    assert v.pass_to_fail == [] and v.fix_validated
    assert v.base_sha == git(calc, "rev-parse", "HEAD")
    assert done.result.edits[0].method == "git-apply"


# -- faults: each ends as a recorded stage status, never a lost trace ------------------------------


def make_repo(path: Path, files: dict[str, str], symlinks: dict[str, str] | None = None) -> str:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for name, target in (symlinks or {}).items():
        (path / name).symlink_to(target)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    return git(path, "rev-parse", "HEAD")


def trace_with_edit(repo: Path | str, file: str, diff: str, **extra: object) -> dict[str, object]:
    return {
        "developer_id": "d",
        "repo_url": str(repo),
        "bug_description": "b",
        "events": [{"type": "edit", "details": {"file": file, "diff": diff}}],
        **extra,
    }


def stage(trace, name: str):  # type: ignore[no-untyped-def]
    return next(s for s in trace.result.stages if s.name == name)


def assert_clean(collector: Collector) -> None:
    """No checkout is left behind."""
    checkouts = collector.settings.data_dir / "checkouts"
    assert not checkouts.exists() or not any(checkouts.iterdir())


ADD_LINE = (
    "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,3 @@\n def divide(a, b):\n+    pass\n"
    "     return a / b\n"
)


def test_an_unreachable_repository_fails_the_workspace_stage(local: Collector) -> None:
    trace = local.submit(trace_with_edit("https://127.0.0.1:9/nothing.git", "calc.py", ADD_LINE))
    done = local.finalize(str(trace.id))
    assert stages(done) == {
        "workspace": "failed",
        "apply": "skipped",
        "tests": "skipped",
        "grade": "ok",  # the reasoning is graded even when the code cannot be checked
    }
    assert "git clone failed" in stage(done, "workspace").message
    assert len(done.events) == 1  # the trace itself is intact
    assert_clean(local)


def test_local_paths_are_refused_unless_allowed(settings: Settings, calc: Path) -> None:
    strict = Collector(settings=settings.model_copy(update={"sandbox": "local"}))
    done = strict.finalize(str(strict.submit(example_trace(calc)).id))
    assert stage(done, "workspace").status == "failed"
    assert "DEBUGTRACE_ALLOW_LOCAL_REPOS=1" in stage(done, "workspace").message


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "-uhttps://x", "ftp://host/x"])
def test_dangerous_urls_are_refused(local: Collector, url: str) -> None:
    done = local.finalize(str(local.submit(trace_with_edit(url, "f", ADD_LINE)).id))
    assert stage(done, "workspace").status == "failed"
    assert "refused" in stage(done, "workspace").message


def test_an_unknown_base_commit_says_so(local: Collector, calc: Path) -> None:
    done = local.finalize(str(local.submit(example_trace(calc, base_commit="deadbeef")).id))
    assert stage(done, "workspace").status == "failed"
    assert "unknown base commit 'deadbeef'" in stage(done, "workspace").message


def test_a_garbage_diff_fails_apply_and_skips_tests(local: Collector, calc: Path) -> None:
    done = local.finalize(str(local.submit(trace_with_edit(calc, "calc.py", "garbage")).id))
    assert stages(done)["apply"] == "failed"
    assert done.result.edits[0].status == "failed"
    assert "not a unified diff" in done.result.edits[0].message
    assert stage(done, "tests").message == "nothing to validate: no edit applied"


def test_a_diff_that_does_not_apply_records_gits_message(local: Collector, calc: Path) -> None:
    stale = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n-def nope():\n+def yes():\n     pass\n"
    done = local.finalize(str(local.submit(trace_with_edit(calc, "calc.py", stale)).id))
    edit = done.result.edits[0]
    assert edit.status == "failed"
    assert "git-apply: error: patch failed: calc.py:1" in edit.message


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../../etc/passwd", "leaves the repository"),
        ("/etc/passwd", "absolute path"),
        (".git/hooks/pre-commit", "inside .git"),
        ("out/passwd", "through the symlink"),
    ],
)
def test_edits_that_escape_the_checkout_are_refused(
    local: Collector, tmp_path: Path, path: str, why: str
) -> None:
    repo = tmp_path / "r"
    make_repo(repo, {"a.txt": "a\n"}, symlinks={"out": "/etc"})
    diff = f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-root\n+pwned\n"
    done = local.finalize(str(local.submit(trace_with_edit(repo, path, diff)).id))
    assert done.result.edits[0].status == "refused"
    assert why in done.result.edits[0].message
    assert "pwned" not in Path("/etc/passwd").read_text()


def test_a_diff_creating_a_symlink_is_refused(local: Collector, calc: Path) -> None:
    diff = (
        "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n"
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )
    done = local.finalize(str(local.submit(trace_with_edit(calc, "link", diff)).id))
    assert done.result.edits[0].status == "refused"


def fixing_trace(repo: Path) -> dict[str, object]:
    return trace_with_edit(
        repo, "mod.py", "--- a/mod.py\n+++ b/mod.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n"
    )


def repo_with_test(tmp_path: Path, test_body: str) -> Path:
    repo = tmp_path / "r"
    make_repo(repo, {"mod.py": "X = 1\n", "test_mod.py": test_body, "pytest.ini": "[pytest]\n"})
    return repo


def test_a_test_suite_that_hangs_is_killed(local: Collector, tmp_path: Path) -> None:
    repo = repo_with_test(tmp_path, "import time\n\ndef test_hang():\n    time.sleep(3600)\n")
    fast = Collector(settings=local.settings.model_copy(update={"test_timeout_s": 3}))
    done = fast.finalize(str(fast.submit(fixing_trace(repo)).id))
    assert stage(done, "tests").status == "failed"
    assert "timed out after 3s" in stage(done, "tests").message
    assert stage(done, "tests").duration_s < 60
    assert_clean(fast)


def test_a_test_that_prints_a_flood_keeps_a_bounded_log(local: Collector, tmp_path: Path) -> None:
    body = (
        "import sys\n\ndef test_flood():\n"
        "    for _ in range(60_000):\n        sys.stdout.write('x' * 1000 + '\\n')\n"
        "    assert False\n"
    )
    repo = repo_with_test(tmp_path, body)
    done = local.finalize(str(local.submit(fixing_trace(repo)).id))
    tests = stage(done, "tests")
    assert len(tests.log.encode()) <= 20_000
    assert done.result.validation is not None
    assert done.result.validation.fail_to_fail == ["test_mod.py::test_flood"]


def test_a_test_that_fills_the_disk_is_stopped(local: Collector, tmp_path: Path) -> None:
    body = (
        "def test_fill():\n    with open('fill.bin', 'wb') as f:\n"
        "        for _ in range(4096):\n            f.write(b'0' * 1024 * 1024)\n"
    )
    repo = repo_with_test(tmp_path, body)
    done = local.finalize(str(local.submit(fixing_trace(repo)).id))
    assert stage(done, "tests").status in ("ok", "failed")
    v = done.result.validation
    assert v is None or v.pass_to_pass == []
    assert_clean(local)


def test_finalize_twice_at_once_runs_once(local: Collector, calc: Path) -> None:
    import threading

    from debugtrace.errors import FinalizeConflict

    tid = str(local.submit(example_trace(calc)).id)
    errors: list[Exception] = []

    def go() -> None:
        try:
            local.finalize(tid)
        except FinalizeConflict as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1
    assert "already being finalized" in str(errors[0])
    assert local.get(tid).status == "finalized"


def test_a_crash_inside_a_stage_is_recorded_and_keeps_earlier_stages(
    local: Collector, calc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from debugtrace.finalize import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sandbox exploded")

    monkeypatch.setattr(pipeline._Run, "sandbox", boom)
    done = local.finalize(str(local.submit(example_trace(calc)).id))
    assert stages(done)["workspace"] == "ok"
    assert stages(done)["apply"] == "ok"
    assert stage(done, "tests").status == "error"
    assert "RuntimeError: sandbox exploded" in stage(done, "tests").message
    assert "Traceback" in stage(done, "tests").log
    assert_clean(local)


def test_a_regression_test_added_by_the_edits_counts_as_fail_to_pass(
    local: Collector, tmp_path: Path
) -> None:
    repo = tmp_path / "r"
    make_repo(
        repo, {"mod.py": "def double(x):\n    return x + x + 1\n", "pytest.ini": "[pytest]\n"}
    )
    new_test = (
        "--- /dev/null\n+++ b/tests/test_double.py\n@@ -0,0 +1,4 @@\n+from mod import double\n+\n"
        "+def test_double():\n+    assert double(2) == 4\n"
    )
    fix = (
        "--- a/mod.py\n+++ b/mod.py\n@@ -1,2 +1,2 @@\n def double(x):\n"
        "-    return x + x + 1\n+    return x + x\n"
    )
    doc = {
        "developer_id": "d",
        "repo_url": str(repo),
        "bug_description": "double is off by one",
        "events": [
            {"type": "edit", "details": {"file": "tests/test_double.py", "diff": new_test}},
            {"type": "edit", "details": {"file": "mod.py", "diff": fix}},
        ],
    }
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    git(repo, "commit", "-qam", "pythonpath", "--author", "t <t@example.com>")
    done = local.finalize(str(local.submit(doc).id))
    v = done.result.validation
    assert v is not None, stage(done, "tests")
    assert v.fail_to_pass == ["tests/test_double.py::test_double"]
    assert v.fix_validated


def test_repeat_marks_flaky_tests_and_per_edit_names_the_fixing_edit(
    settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "r"
    make_repo(
        repo,
        {
            "mod.py": "X = 1\n",
            "pytest.ini": "[pytest]\npythonpath = .\n",
            "test_mod.py": (
                "import random\nfrom mod import X\n\ndef test_x():\n    assert X == 2\n\n"
                "def test_coin():\n    assert random.random() < 0.5\n"
            ),
        },
    )
    c = Collector(
        settings=settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    )
    doc = {
        "developer_id": "d",
        "repo_url": str(repo),
        "bug_description": "X should be 2",
        "events": [
            {"type": "reasoning", "details": {"text": "X is wrong"}},
            {
                "type": "edit",
                "details": {
                    "file": "mod.py",
                    "diff": "--- a/mod.py\n+++ b/mod.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n",
                },
            },
        ],
    }
    from debugtrace.finalize import FinalizeOptions
    from debugtrace.finalize.pipeline import finalize

    done = finalize(c, str(c.submit(doc).id), FinalizeOptions(repeat=6, per_edit=True))
    v = done.result.validation
    assert v is not None
    assert v.fail_to_pass == ["test_mod.py::test_x"]
    assert v.turned_green_by == {"test_mod.py::test_x": 2}
    # 6 coin flips per side: both outcomes appear with probability 1 - 2 * 0.5**12 per side.
    assert "test_mod.py::test_coin" in v.flaky


# -- the command line ---------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGTRACE_")}
    env.update(
        DEBUGTRACE_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        DEBUGTRACE_DATA_DIR=str(tmp_path / "data"),
        DEBUGTRACE_LOAD_PLUGINS="",
        DEBUGTRACE_SANDBOX="local",
    )
    exe = Path(sys.executable).parent / "debugtrace"
    return subprocess.run(
        [str(exe), *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def test_cli_submit_finalizes_by_default(tmp_path: Path, calc: Path) -> None:
    import json

    run = cli(tmp_path, "submit", "-", stdin=json.dumps(example_trace(calc)))
    assert run.returncode == 0, run.stderr
    assert "fix validated: yes" in run.stdout
    assert "fail_to_pass (1): tests/test_calc.py::test_divide_by_zero" in run.stdout
    trace_id = run.stdout.splitlines()[-1]
    shown = cli(tmp_path, "show", trace_id)
    assert "tests      ok" in shown.stdout


def test_cli_demo_records_finalizes_and_reports(tmp_path: Path) -> None:
    run = cli(tmp_path, "demo")
    assert run.returncode == 0, run.stderr
    assert "fix validated: yes" in run.stdout
    assert "test_divide_by_zero" in run.stdout
    assert run.stdout.splitlines()[-1] == run.stdout.strip().splitlines()[-1]


def test_finalize_grades_with_the_heuristic_grader_by_default(local: Collector, calc: Path) -> None:
    done = local.finalize(str(local.submit(example_trace(calc)).id))
    assert [g.grader for g in done.result.grades] == ["heuristic"]
    assert stage(done, "grade").message == f"heuristic {done.result.grades[0].score}/5"


def test_regrade_keeps_the_verdict_and_replaces_the_grade(local: Collector, calc: Path) -> None:
    done = local.finalize(str(local.submit(example_trace(calc)).id))
    again = local.grade(str(done.id), ["heuristic"])
    assert again.result.validation == done.result.validation
    assert len(again.result.grades) == 1
    assert [s.name for s in again.result.stages] == ["workspace", "apply", "tests", "grade"]


def test_an_unknown_grader_fails_the_grade_stage_only(local: Collector, calc: Path) -> None:
    s = local.settings.model_copy(update={"grader": "heuristic,nope"})
    c = Collector(settings=s)
    done = c.finalize(str(c.submit(example_trace(calc)).id))
    assert stages(done)["tests"] == "ok"
    assert stage(done, "grade").status == "failed"
    assert "nope: unknown grader 'nope'" in stage(done, "grade").message
    assert [g.grader for g in done.result.grades] == ["heuristic"]


def test_cli_grade_shows_the_rubric(tmp_path: Path, calc: Path) -> None:
    import json

    tid = cli(tmp_path, "submit", "-", stdin=json.dumps(example_trace(calc))).stdout.split()[-1]
    run = cli(tmp_path, "grade", tid, "--grader", "heuristic")
    assert run.returncode == 0, run.stderr
    assert "by heuristic" in run.stdout
    assert "reproduction" in run.stdout
