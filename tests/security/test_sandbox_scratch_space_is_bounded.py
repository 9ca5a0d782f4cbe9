"""Issue 14, item 8 (sandbox part): test code cannot fill the host's disk or memory through the
sandbox's scratch space.

Before: bwrap's ``/tmp`` was a tmpfs of half the RAM, the checkout could grow without end, and the
docker sandbox's workspace volume was unbounded. Now ``/tmp`` (and ``/dev/shm``) are tmpfs of
``sandbox_tmp_bytes``, the local checkout may grow by ``sandbox_disk_bytes`` (the run is stopped
beyond), and the docker workspace and home are tmpfs volumes of a fixed size.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.sandbox import ProjectSpec, ResourceLimits, Sandbox, SandboxHandle
from debugtrace.sandbox.docker.sandbox import DockerSandbox
from debugtrace.sandbox.local import LocalSandbox
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name
from support.services import require

MIB = 1024**2
SMALL = Settings(sandbox_tmp_bytes=8 * MIB, sandbox_disk_bytes=16 * MIB)
PROJECT = ProjectSpec(kind="python", test_command=("true",))


# Writes 1 MiB at a time to PATH until it has written TOTAL MiB or the file system says no.
FILL = """
import sys, time
path, total = sys.argv[1], int(sys.argv[2])
written = 0
try:
    with open(path, "wb") as f:
        for _ in range(total):
            f.write(b"0" * (1024 * 1024))
            f.flush()
            written += 1
            time.sleep(0.005)
    print("WROTE", written)
except OSError as exc:
    print("STOPPED", written, exc.strerror)
"""


@pytest.fixture
def local() -> LocalSandbox:
    if not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
    return LocalSandbox(SMALL, use_bwrap=True)


@pytest.fixture
def docker(docker_engine: Any) -> DockerSandbox:  # noqa: F811
    return DockerSandbox(SMALL.model_copy(update={"docker_image": IMAGE}))


def _handle(sandbox: Sandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "fill.py").write_text(FILL)
    h = sandbox.prepare(wt, PROJECT)
    yield h
    sandbox.close(h)


@pytest.fixture
def local_handle(local: LocalSandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
    yield from _handle(local, tmp_path)


@pytest.fixture
def docker_handle(docker: DockerSandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
    yield from _handle(docker, tmp_path)


def fill(sandbox: Sandbox, handle: SandboxHandle, python: str, path: str, mib: int) -> Any:
    return sandbox.run(handle, [python, "fill.py", path, str(mib)], ResourceLimits(timeout_s=60))


@pytest.mark.parametrize("path", ["/tmp/big", "/dev/shm/big"])
def test_local_tmp_and_shm_are_size_limited(
    local: LocalSandbox, local_handle: SandboxHandle, path: str
) -> None:
    r = fill(local, local_handle, sys.executable, path, 64)
    assert "STOPPED" in r.output, r.output
    written = int(r.output.split()[1])
    assert written <= 8, r.output


def test_local_run_is_stopped_when_the_checkout_outgrows_its_allowance(
    local: LocalSandbox, local_handle: SandboxHandle
) -> None:
    start = time.monotonic()
    r = fill(local, local_handle, sys.executable, "big.bin", 400)
    assert r.limit_hit == "disk", r.output
    assert r.exit_code is None and not r.timed_out
    assert "DEBUGTRACE_SANDBOX_DISK_BYTES" in r.output
    assert time.monotonic() - start < 30
    # stopped soon after crossing the line (checks run twice a second)
    assert (local_handle.worktree / "big.bin").stat().st_size < 200 * MIB


def test_local_run_within_the_allowance_is_not_stopped(
    local: LocalSandbox, local_handle: SandboxHandle
) -> None:
    r = fill(local, local_handle, sys.executable, "ok.bin", 4)
    assert r.exit_code == 0 and r.limit_hit is None, r.output
    assert "WROTE 4" in r.output


@pytest.mark.docker
@pytest.mark.parametrize("path", ["/tmp/big", "/workspace/big", "/home/sandbox/big"])
def test_docker_scratch_space_and_workspace_are_size_limited(
    docker: DockerSandbox, docker_handle: SandboxHandle, path: str
) -> None:
    # /workspace: the checkout plus 16 MiB; /tmp and the home volume: 8 MiB
    r = fill(docker, docker_handle, "python3", path, 64)
    assert "STOPPED" in r.output, r.output
    assert int(r.output.split()[1]) <= 18, r.output


@pytest.mark.docker
def test_docker_workspace_keeps_its_files_between_runs(
    docker: DockerSandbox, docker_handle: SandboxHandle
) -> None:
    # the workspace lives in memory: it must stay mounted for the handle's whole life
    r = docker.run(docker_handle, ["sh", "-c", "echo kept > note.txt"], ResourceLimits())
    assert r.exit_code == 0, r.output
    r = docker.run(docker_handle, ["cat", "note.txt", "fill.py"], ResourceLimits())
    assert r.exit_code == 0 and r.output.startswith("kept\n"), r.output
