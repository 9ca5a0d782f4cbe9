"""Issue 14, item 11: what finalize stores (stage messages and logs, edit messages, test ids)
goes through the same redactor as incoming traces, and is bounded.

Test code is untrusted and may print secrets it finds (in the repository, in files it can read);
the tests stage log used to store them as printed, readable through the API and the dashboard.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from debugtrace import Collector, Settings

LOG_BYTES = 16 * 1024  # the bounds docs/finalize.md states
MESSAGE_BYTES = 1000

# Built at run time so that no secret sits in this file or the repository's source as one token.
GH = "ghp_" + "A1b2C3d4" * 4 + "Zz9x"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i"],
    ):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)
    return path


def leaky_repo(tmp_path: Path) -> Path:
    test = (
        "import pytest\nfrom mod import X\n\n"
        "TOKEN = 'ghp_' + 'A1b2C3d4' * 4 + 'Zz9x'\n\n"
        "def test_x():\n"
        "    print('found a token:', TOKEN)\n"
        "    print('aws:', 'AKIA' + 'IOSFODNN7EXAMPLE')\n"
        "    assert X == 2, 'the token was ' + TOKEN\n\n"
        "@pytest.mark.parametrize('key', [TOKEN])\n"
        "def test_key(key):\n"
        "    assert key\n"
    )
    return make_repo(
        tmp_path / "r",
        {"mod.py": "X = 1\n", "test_mod.py": test, "pytest.ini": "[pytest]\npythonpath = .\n"},
    )


@pytest.fixture
def collector(settings: Settings) -> Collector:
    return Collector(
        settings=settings.model_copy(
            update={"allow_local_repos": True, "sandbox": "local", "grader": "heuristic"}
        )
    )


def submit(collector: Collector, repo: Path) -> str:
    diff = "--- a/mod.py\n+++ b/mod.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n"
    doc = {
        "developer_id": "d",
        "repo_url": str(repo),
        "bug_description": "b",
        "events": [{"type": "edit", "details": {"file": "mod.py", "diff": diff}}],
    }
    return str(collector.submit(doc).id)


def stored_text(collector: Collector, trace_id: str) -> str:
    """Everything finalize stored on the trace, read back from the store."""
    return collector.get(trace_id).result.model_dump_json()


def test_secrets_printed_by_the_tests_are_not_stored(collector: Collector, tmp_path: Path) -> None:
    tid = submit(collector, leaky_repo(tmp_path))
    done = collector.finalize(tid)
    tests = next(s for s in done.result.stages if s.name == "tests")
    assert "found a token:" in tests.log  # the output is there...
    assert "[REDACTED:github-token]" in tests.log  # ...with the secret replaced
    stored = stored_text(collector, tid)
    assert GH not in stored
    assert AWS not in stored
    v = done.result.validation
    assert v is not None
    assert v.fail_to_pass == ["test_mod.py::test_x"]
    assert any("[REDACTED:github-token]" in t for t in v.pass_to_pass)  # the parametrized id


def test_a_crash_message_and_traceback_are_redacted_and_bounded(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from debugtrace.finalize import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"sandbox said {GH} " + "x" * 50_000)

    monkeypatch.setattr(pipeline._Run, "sandbox", boom)
    tid = submit(collector, leaky_repo(tmp_path))
    done = collector.finalize(tid)
    tests = next(s for s in done.result.stages if s.name == "tests")
    assert tests.status == "error"
    assert "[REDACTED:github-token]" in tests.message
    assert len(tests.message.encode()) <= MESSAGE_BYTES
    assert len(tests.log.encode()) <= LOG_BYTES
    assert GH not in stored_text(collector, tid)


def test_a_failing_stage_message_is_redacted(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StageFailed messages quote tools (git's stderr, a test run's last line)."""
    from debugtrace.errors import RepoError
    from debugtrace.finalize import workspace

    def refuse(self: object, url: str) -> None:
        raise RepoError(f"git clone failed: remote said token={AWS}")

    monkeypatch.setattr(workspace.Workspace, "update_mirror", refuse)
    tid = submit(collector, leaky_repo(tmp_path))
    done = collector.finalize(tid)
    ws = next(s for s in done.result.stages if s.name == "workspace")
    assert ws.status == "failed"
    assert AWS not in ws.message and "[REDACTED:" in ws.message
    assert AWS not in stored_text(collector, tid)


def test_without_redaction_configured_logs_are_still_bounded(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from debugtrace.finalize import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("y" * 50_000)

    monkeypatch.setattr(pipeline._Run, "sandbox", boom)
    c = Collector(
        settings=settings.model_copy(
            update={"allow_local_repos": True, "sandbox": "local", "redact": False}
        )
    )
    done = c.finalize(submit(c, leaky_repo(tmp_path)))
    tests = next(s for s in done.result.stages if s.name == "tests")
    assert len(tests.message.encode()) <= MESSAGE_BYTES
    assert len(tests.log.encode()) <= LOG_BYTES
