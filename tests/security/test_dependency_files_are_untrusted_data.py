"""Issue 14, item 2: a repository's dependency files are untrusted data.

A ``requirements.txt`` could make the server's pip read ``/proc/self/environ`` (and quote it,
API keys included, into the stage log), read any host file, or fetch from any URL (SSRF).
Now only requirement specifiers inside the checkout reach the host's pip, which runs with a
scrubbed environment, and what pip says is bounded.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace.errors import SandboxError
from debugtrace.sandbox import ProjectSpec
from debugtrace.sandbox.docker import images
from debugtrace.sandbox.docker.images import pip_download, project_requirements
from debugtrace.sandbox.projects import detect_project

CANARY = f"canary-{uuid.uuid4().hex}"


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's environment holds secrets, each containing CANARY."""
    monkeypatch.setenv("DEBUGTRACE_API_TOKEN", f"dt-{CANARY}")
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-{CANARY}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"aws-{CANARY}")
    return CANARY


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request (an SSRF target); yields (url, hits)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_requirements_includes_never_read_proc_self_environ_or_host_files(
    tmp_path: Path, secrets_in_env: str
) -> None:
    outside = tmp_path / "host-file.txt"
    outside.write_text(f"host-secret=={CANARY}\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "env.txt").symlink_to("/proc/self/environ")
    (repo / "requirements-host.txt").symlink_to(outside)
    (repo / "requirements.txt").write_text(
        "six\n"
        "-r /proc/self/environ\n"
        "-r ../../../../../../../../proc/self/environ\n"
        "--requirement=/proc/self/environ\n"
        "-c /proc/self/environ\n"
        "-r env.txt\n"
        f"-r {outside}\n"
        "-r requirements-host.txt\n"
    )
    lines = project_requirements(repo, ["requirements.txt", "requirements-host.txt"])
    assert lines == ["six"]
    joined = "\n".join(lines)
    assert "/proc" not in joined and str(outside) not in joined and CANARY not in joined


def test_pip_options_and_urls_in_requirements_never_reach_the_hosts_pip(
    tmp_path: Path, recorder: tuple[str, list[str]]
) -> None:
    url, hits = recorder
    (tmp_path / "requirements.txt").write_text(
        f"--index-url {url}/index/simple\n"
        f"--extra-index-url={url}/extra/simple\n"
        f"-i {url}/i/simple\n"
        f"--find-links {url}/links/\n"
        "--trusted-host 127.0.0.1\n"
        f"pkg @ {url}/direct/pkg-1.0-py3-none-any.whl\n"
        f"{url}/bare/other-1.0-py3-none-any.whl\n"
        "six\n"
    )
    lines = project_requirements(tmp_path, ["requirements.txt"])
    dest = tmp_path / "wheels"
    dest.mkdir()
    with contextlib.suppress(SandboxError):  # the index may lack six: what matters is where
        pip_download(lines, dest, progress=None)  # pip went
    assert hits == []
    assert lines == ["six"]


def test_pip_runs_with_an_allow_listed_environment(
    tmp_path: Path, secrets_in_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "60")  # pip's own settings still apply
    seen: list[dict[str, str] | None] = []

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(kw.get("env"))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(images.subprocess, "run", fake_run)
    pip_download(["six"], tmp_path, progress=None)
    env = seen[0]
    assert env is not None, "pip inherited the server's whole environment"
    assert CANARY not in repr(env)
    assert not {"DEBUGTRACE_API_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert env.get("PIP_DEFAULT_TIMEOUT") == "60"


def test_environment_variables_in_requirements_are_not_expanded_by_pip(
    tmp_path: Path, secrets_in_env: str
) -> None:
    # pip expands ${VAR} in requirements files from its own environment
    (tmp_path / "requirements.txt").write_text(
        "six\nattrs==${OPENAI_API_KEY}\niniconfig ; python_version == '${DEBUGTRACE_API_TOKEN}'\n"
    )
    lines = project_requirements(tmp_path, ["requirements.txt"])
    dest = tmp_path / "wheels"
    dest.mkdir()
    said: list[str] = []
    try:
        pip_download(lines, dest, progress=said.append)
        message = ""
    except SandboxError as exc:
        message = str(exc)
    assert CANARY not in message
    assert not any(CANARY in m for m in said)
    assert lines == ["six"]


def test_pips_error_output_is_bounded_in_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = "\n".join(f"ERROR: line {i} " + "x" * 10_000 for i in range(1000))

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, noisy, noisy)

    monkeypatch.setattr(images.subprocess, "run", fake_run)
    with pytest.raises(SandboxError) as info:
        pip_download(["six"], tmp_path, progress=None)
    assert "pip download failed" in str(info.value)
    assert len(str(info.value)) <= 5000


def test_a_dependency_file_linked_to_a_host_file_is_not_read(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    # configparser quotes the offending line in its error: that must not carry a host file out
    (host / "secret.ini").write_text(f"API_TOKEN={CANARY}\n")
    (host / "pyproject.toml").write_text(f'[project]\ndependencies = ["{CANARY}"]\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "setup.cfg").symlink_to(host / "secret.ini")
    (repo / "pyproject.toml").symlink_to(host / "pyproject.toml")
    try:
        lines = project_requirements(repo, ["setup.cfg", "pyproject.toml"])
        message = ""
    except SandboxError as exc:
        lines, message = [], str(exc)
    assert CANARY not in message
    assert CANARY not in "\n".join(lines)


def _unblock(fifo: Path) -> None:
    """Let a reader blocked on opening ``fifo`` go (it sees end of file)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def _finishes(fn: Any, timeout_s: float, fifos: list[Path]) -> bool:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout_s)
    finished = not thread.is_alive()
    for fifo in fifos:  # an old reader may still be blocked: release it before failing
        _unblock(fifo)
    thread.join(5)
    return finished


def test_dependency_and_marker_files_that_are_fifos_do_not_hang_the_server(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tests").mkdir()
    (repo / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    os.mkfifo(repo / "requirements.txt")
    assert _finishes(
        lambda: project_requirements(repo, ["requirements.txt"]), 5, [repo / "requirements.txt"]
    )
    make = tmp_path / "make"
    make.mkdir()
    os.mkfifo(make / "Makefile")
    os.mkfifo(make / "package.json")
    assert _finishes(lambda: detect_project(make), 5, [make / "Makefile", make / "package.json"])


def test_environment_images_read_no_dependency_file_through_a_symlink_out(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("six\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").symlink_to(outside)
    project = ProjectSpec(
        kind="python", test_command=("pytest",), dependency_files=("requirements.txt",)
    )
    # nothing of the checkout's own to install: the base image is used and the client untouched
    assert images.ensure_env_image(None, "base:tag", repo, project) == "base:tag"


def test_a_specifier_hiding_a_line_break_for_pip_is_dropped(tmp_path: Path) -> None:
    # packaging accepts \f, \v, \x85 and \u2028 inside a marker string; pip splits lines there,
    # so "-r /x" would reach it as a line of its own.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\n'
        'dependencies = ["six; os_name == \\"\\f-r /etc/hostname\\f\\"", "attrs\\u2028-r /x", '
        '"packaging >= 23"]\n'
    )
    lines = project_requirements(tmp_path, ["pyproject.toml"])
    assert lines == ["packaging>=23"]
