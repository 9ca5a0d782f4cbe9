"""The local sandbox passes the sandbox contract, with and without bubblewrap."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from debugtrace import Settings
from debugtrace.sandbox import ProjectSpec, ResourceLimits
from debugtrace.sandbox.local import LocalSandbox
from debugtrace.testing import SandboxContract
from support.services import require


class TestLocalSandboxWithBwrap(SandboxContract):
    @pytest.fixture
    def sandbox(self) -> LocalSandbox:
        if not shutil.which("bwrap"):
            require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
        return LocalSandbox(use_bwrap=True)

    @pytest.fixture
    def python(self) -> list[str]:
        return [sys.executable]


def test_isolation_is_described() -> None:
    assert "bwrap" in LocalSandbox(use_bwrap=bool(shutil.which("bwrap"))).isolation


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.parametrize("bwrap", [True, False])
def test_git_works_in_a_shared_checkout_and_its_git_dir_is_read_only(
    tmp_path: Path, bwrap: bool, request: pytest.FixtureRequest
) -> None:
    if bwrap and not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
    # a folder nobody can reach (pytest's own is root-only): the alternates path is absolute
    base = Path(tempfile.mkdtemp(prefix="debugtrace-test-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    data = base / "data"
    src = tmp_path / "src"
    src.mkdir()
    _git("init", "-q", "-b", "main", cwd=src)
    (src / "a.txt").write_text("a\n")
    _git("add", "a.txt", cwd=src)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first", cwd=src)
    mirror = data / "mirrors" / "x.git"
    _git("clone", "-q", "--mirror", str(src), str(mirror))
    wt = data / "checkouts" / "wt"
    _git("clone", "-q", "--shared", str(mirror), str(wt))
    for path in (base, data, data / "mirrors", data / "checkouts"):
        path.chmod(0o755)
    sandbox = LocalSandbox(Settings(data_dir=data), use_bwrap=bwrap)
    if not bwrap and os.geteuid() == 0 and not _nobody_can_reach(mirror):
        pytest.skip(f"{mirror} is not reachable by nobody, who runs the command without bwrap")
    handle = sandbox.prepare(wt, ProjectSpec(kind="python", test_command=("true",)))
    try:
        r = sandbox.run(
            handle,
            ["sh", "-c", "git log -1 --format=%s && git status --short && touch .git/x"],
            ResourceLimits(timeout_s=60),
        )
    finally:
        sandbox.close(handle)
    assert r.output.startswith("first\n"), r.output
    assert r.exit_code != 0 and not (wt / ".git" / "x").exists()


def _nobody_can_reach(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in path.resolve().parents)
