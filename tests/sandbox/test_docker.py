"""The docker sandbox passes the sandbox contract against a real engine and cleans up after it."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.errors import SandboxError
from debugtrace.plugins import Plugins
from debugtrace.sandbox import ProjectSpec, ResourceLimits, SandboxHandle
from debugtrace.sandbox.docker.sandbox import (
    OWNER_LABEL,
    DockerSandbox,
    _owner,
    cleanup_leftovers,
)
from debugtrace.testing import SandboxContract
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

# one worker for every test of the shared engine (static: xdist reads groups before conftest
# adds them)
pytestmark = pytest.mark.docker

PROJECT = ProjectSpec(kind="python", test_command=("pytest",))


def handle_objects(client: Any, handle: SandboxHandle) -> tuple[list[Any], list[Any]]:
    """The containers and volumes of one handle, found by label."""
    label = f"debugtrace.handle={handle.state['id']}"
    containers = client.containers.list(all=True, filters={"label": label})
    volumes = client.volumes.list(filters={"label": label})
    return containers, volumes


class TestDockerSandbox(SandboxContract):
    @pytest.fixture
    def sandbox(self, docker_engine: Any) -> DockerSandbox:  # noqa: F811
        return DockerSandbox(Settings(docker_image=IMAGE))

    @pytest.fixture
    def python(self) -> list[str]:
        return ["python3"]


@pytest.fixture
def sandbox(docker_engine: Any) -> DockerSandbox:  # noqa: F811
    return DockerSandbox(Settings(docker_image=IMAGE))


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    wt = tmp_path / "wt"
    (wt / "pkg").mkdir(parents=True)
    (wt / "pkg" / "mod.py").write_text("X = 1\n")
    (wt / "run.sh").write_text("#!/bin/sh\necho run\n")
    (wt / "run.sh").chmod(0o755)
    return wt


@pytest.fixture
def handle(sandbox: DockerSandbox, worktree: Path) -> Iterator[SandboxHandle]:
    h = sandbox.prepare(worktree, PROJECT)
    yield h
    sandbox.close(h)


def test_close_leaves_no_container_or_volume(
    docker_engine: Any,  # noqa: F811
    sandbox: DockerSandbox,
    worktree: Path,
) -> None:
    h = sandbox.prepare(worktree, PROJECT)
    r = sandbox.run(h, ["true"], ResourceLimits())
    assert r.exit_code == 0
    containers, volumes = handle_objects(docker_engine, h)
    assert len(containers) == 1  # the data container; the run's container is already gone
    assert len(volumes) == 2
    sandbox.close(h)
    sandbox.close(h)
    assert handle_objects(docker_engine, h) == ([], [])
    with pytest.raises(SandboxError, match="closed"):
        sandbox.run(h, ["true"], ResourceLimits())


def test_a_missing_image_names_it_and_the_build_command(
    docker_engine: Any,  # noqa: F811
    worktree: Path,
) -> None:
    sb = DockerSandbox(Settings(docker_image="debugtrace-no-such-image:0"))
    # This process's containers only: another xdist worker may be making its own meanwhile.
    ours = {"label": ["debugtrace=1", f"{OWNER_LABEL}={_owner()}"]}
    before = docker_engine.containers.list(all=True, filters=ours)
    with pytest.raises(SandboxError) as info:
        sb.prepare(worktree, PROJECT)
    message = str(info.value)
    assert "debugtrace-no-such-image:0" in message
    assert "scripts/build-base-image.sh" in message
    assert "debugtrace sandbox build" in message
    assert docker_engine.containers.list(all=True, filters=ours) == before


def test_no_engine_names_docker_host_and_how_to_start_one(
    worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(SandboxError) as info:
        DockerSandbox(Settings()).prepare(worktree, PROJECT)
    assert f"unix://{tmp_path}/nothing.sock" in str(info.value)
    assert "scripts/dockerd.sh start" in str(info.value)


def test_worktree_is_owned_by_the_sandbox_user_and_keeps_modes(
    sandbox: DockerSandbox, handle: SandboxHandle
) -> None:
    r = sandbox.run(handle, ["sh", "-c", "id -u; stat -c '%u %a %n' . pkg pkg/mod.py run.sh"], _L)
    assert r.exit_code == 0, r.output
    lines = r.output.split("\n")
    assert lines[0] == "1000"
    assert "1000 755 run.sh" in r.output
    assert "1000 644 pkg/mod.py" in r.output
    assert sandbox.run(handle, ["./run.sh"], _L).output == "run\n"


_L = ResourceLimits(timeout_s=60)


def test_environment_is_scrubbed_and_home_persists(
    sandbox: DockerSandbox, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    project = ProjectSpec(kind="python", test_command=("pytest",), env={"MY_FLAG": "on"})
    h = sandbox.prepare(worktree, project)
    try:
        code = "import os, json; print(json.dumps(dict(os.environ)))"
        env = json.loads(sandbox.run(h, ["python3", "-c", code], _L).output)
        assert env["MY_FLAG"] == "on"
        assert env["HOME"] == "/home/sandbox"
        assert "/opt/venv/bin" in env["PATH"]
        assert "AWS_SECRET_ACCESS_KEY" not in env
        assert "DOCKER_HOST" not in env
        write = "import pathlib; (pathlib.Path.home() / 'cache.txt').write_text('kept')"
        assert sandbox.run(h, ["python3", "-c", write], _L).exit_code == 0
        r = sandbox.run(h, ["cat", "/home/sandbox/cache.txt"], _L)
        assert r.output == "kept"
    finally:
        sandbox.close(h)


def test_a_timed_out_handle_still_runs_the_next_command(
    sandbox: DockerSandbox, handle: SandboxHandle
) -> None:
    r = sandbox.run(handle, ["sh", "-c", "echo keep > kept.txt; sleep 60"], ResourceLimits(1))
    assert r.timed_out and r.exit_code is None
    r = sandbox.run(handle, ["cat", "kept.txt"], _L)
    assert (r.exit_code, r.output) == (0, "keep\n")


def test_a_command_is_over_when_the_processes_it_started_are(
    sandbox: DockerSandbox, handle: SandboxHandle
) -> None:
    # the background writer finishes after its parent exited; its file must be complete
    r = sandbox.run(handle, ["sh", "-c", "(sleep 1; echo late > late.txt) & exit 3"], _L)
    assert (r.exit_code, r.timed_out) == (3, False)
    assert sandbox.run(handle, ["cat", "late.txt"], _L).output == "late\n"
    # ... and one that outlives the timeout ends the run as timed out, killed
    r = sandbox.run(handle, ["sh", "-c", "sleep 60 & exit 0"], ResourceLimits(timeout_s=1.5))
    assert r.timed_out and r.exit_code is None


def test_fetch_refuses_paths_outside_the_workspace(
    sandbox: DockerSandbox, handle: SandboxHandle
) -> None:
    r = sandbox.run(
        handle, ["true"], _L, fetch=["/etc/passwd", "../etc/passwd", "pkg/mod.py", "pkg"]
    )
    assert r.files == {"pkg/mod.py": b"X = 1\n"}


def test_sync_back_copies_changes_to_the_worktree(
    sandbox: DockerSandbox, handle: SandboxHandle, worktree: Path
) -> None:
    code = "open('pkg/mod.py', 'w').write('X = 2\\n'); open('new.txt', 'w').write('n')"
    assert sandbox.run(handle, ["python3", "-c", code], _L).exit_code == 0
    sandbox.sync_back(handle)
    assert (worktree / "pkg" / "mod.py").read_text() == "X = 2\n"
    assert (worktree / "new.txt").read_text() == "n"
    assert os.access(worktree / "run.sh", os.X_OK)


class _CuttableProxy:
    """A unix-socket proxy in front of the engine whose connections can all be cut at once."""

    def __init__(self, target: str, path: Path) -> None:
        self.target, self.path = target, path
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        self.conns: list[socket.socket] = []
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX)
            self.conns += [client, upstream]
            upstream.connect(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut_all(self) -> None:
        self.cut = True
        self.server.close()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut_all()
        for s in self.conns:
            s.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # docker-py leaks refused connections
def test_the_engine_going_away_mid_run_is_a_sandbox_error_not_a_hang(
    docker_engine: Any,  # noqa: F811
    worktree: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = os.environ["DOCKER_HOST"]
    if not host.startswith("unix://"):
        pytest.skip("the proxy only fronts unix-socket engines")
    proxy = _CuttableProxy(host.removeprefix("unix://"), tmp_path / "p.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{proxy.path}")
    sb = DockerSandbox(Settings(docker_image=IMAGE))
    h = sb.prepare(worktree, PROJECT)
    try:
        threading.Timer(1.5, proxy.cut_all).start()
        start = time.monotonic()
        with pytest.raises(SandboxError):
            sb.run(h, ["sh", "-c", "echo started; sleep 30"], ResourceLimits(timeout_s=20))
        assert time.monotonic() - start < 15
    finally:
        monkeypatch.setenv("DOCKER_HOST", host)
        with pytest.raises(SandboxError, match="cleanup_leftovers"):
            sb.close(h)  # through the cut proxy: it cannot, and says what to do
        proxy.close()
        sb.client.close()
        del sb
        gc.collect()  # while the ResourceWarning filter above applies
        cleanup_leftovers(docker_engine)  # the engine kept what the lost client could not remove
    assert handle_objects(docker_engine, h) == ([], [])


def test_the_plugin_registers_docker_lazily(settings: Settings) -> None:
    info = Plugins(settings).backends("sandbox")["docker"]
    assert info.requires == ("docker",)
    assert "debugtrace-collector[docker]" in info.install_hint
    assert isinstance(Plugins(settings).create("sandbox", "docker"), DockerSandbox)
    code = (
        "import sys, debugtrace.default_plugins.docker_sandbox as m; "
        "print('docker' in sys.modules or 'debugtrace.sandbox.docker.sandbox' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_example_trace_finalizes_in_docker(
    docker_engine: Any,  # noqa: F811
    settings: Settings,
    tmp_path: Path,
) -> None:
    from debugtrace import Collector
    from support.calc_repo import example_trace, make_calc_repo

    repo = tmp_path / "calc"
    make_calc_repo(repo)
    s = settings.model_copy(
        update={"allow_local_repos": True, "sandbox": "docker", "docker_image": IMAGE}
    )
    with Collector(settings=s) as c:
        done = c.finalize(str(c.submit(example_trace(repo)).id))
    tests = next(st for st in done.result.stages if st.name == "tests")
    assert tests.status == "ok", tests.message + tests.log
    assert "sandbox: docker" in tests.log
    v = done.result.validation
    assert v is not None
    assert v.fail_to_pass == ["tests/test_calc.py::test_divide_by_zero"]
    assert v.pass_to_pass == ["tests/test_calc.py::test_divide"]
    assert v.fix_validated
    assert cleanup_leftovers(docker_engine) == 0  # nothing left behind
