"""Issue 14, item 2, end to end: the docker sandbox's environment image cannot be made to quote
the server's environment (``-r /proc/self/environ``) or a host file into its error, and what
test code writes into the workspace cannot reach the host through ``sync_back``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.errors import SandboxError
from debugtrace.sandbox import ProjectSpec, ResourceLimits
from debugtrace.sandbox.docker.sandbox import DockerSandbox
from debugtrace.sandbox.projects import detect_project
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.docker

CANARY = f"canary-{uuid.uuid4().hex}"


@pytest.fixture
def sandbox(docker_engine: Any) -> Iterator[DockerSandbox]:  # noqa: F811
    sb = DockerSandbox(Settings(docker_image=IMAGE))
    before = {t for i in docker_engine.images.list() for t in i.tags}
    yield sb
    for image in docker_engine.images.list():  # environment images this test built
        for tag in set(image.tags) - before:
            with contextlib.suppress(Exception):
                docker_engine.images.remove(tag, force=True)


def _project(path: Path, requirements: str) -> ProjectSpec:
    (path / "tests").mkdir(parents=True)
    (path / "tests" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (path / "requirements.txt").write_text(f"# {uuid.uuid4().hex}\n{requirements}")
    project = detect_project(path)
    assert project is not None
    return project


def _prepare_message(sandbox: DockerSandbox, path: Path, project: ProjectSpec) -> str:
    try:
        handle = sandbox.prepare(path, project)
    except SandboxError as exc:
        return str(exc)
    sandbox.close(handle)
    return ""


def test_requirements_cannot_quote_the_servers_environment_into_the_error(
    sandbox: DockerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEBUGTRACE_API_TOKEN", f"dt-{CANARY}")
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-{CANARY}")
    project = _project(tmp_path / "p", "-r /proc/self/environ\n-c /proc/self/environ\n")
    message = _prepare_message(sandbox, tmp_path / "p", project)
    assert CANARY not in message
    # /proc/self/environ is the environment this process started with (not the monkeypatched
    # one): none of its entries may show up either
    started_with = Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0")
    leaked = [entry.split("=")[0] for entry in started_with if len(entry) > 8 and entry in message]
    assert leaked == []


def test_requirements_cannot_quote_a_host_file_into_the_error(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    host = tmp_path / "host-secret.txt"
    host.write_text(f"API_TOKEN={CANARY}\n")
    repo = tmp_path / "p"
    project = _project(repo, f"-r {host}\n-r requirements-link.txt\n")
    (repo / "requirements-link.txt").symlink_to(host)
    message = _prepare_message(sandbox, repo, project)
    assert CANARY not in message


def test_sync_back_writes_nothing_through_a_worktree_symlink_nor_into_git(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    wt = tmp_path / "wt"
    (wt / ".git").mkdir(parents=True)
    (wt / ".git" / "config").write_text("[core]\n")
    (wt / "hello.txt").write_text("hi\n")
    os.symlink(outside, wt / "link")
    handle = sandbox.prepare(wt, ProjectSpec(kind="python", test_command=("true",)))
    try:
        script = (
            "rm link && mkdir link && echo pwned > link/planted.txt && "
            "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' > .git/config && "
            "echo changed > hello.txt"
        )
        r = sandbox.run(handle, ["sh", "-c", script], ResourceLimits(timeout_s=60))
        assert r.exit_code == 0, r.output
        sandbox.sync_back(handle)
    finally:
        sandbox.close(handle)
    assert not (outside / "planted.txt").exists()
    assert "fsmonitor" not in (wt / ".git" / "config").read_text()
    assert (wt / "hello.txt").read_text() == "changed\n"  # ordinary files still come back
