"""Issue 14, item 7 (sandbox part): a report file read back from a sandbox is bounded.

Before: ``_fetch`` read whatever the tests wrote (up to the 1 GiB file-size limit) into the
server's memory. Now each fetched file is at most ``sandbox_fetch_bytes`` (16 MiB by default);
a larger one is left out and the result says so (``files_omitted`` and a note in the output).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.sandbox import ProjectSpec, ResourceLimits, Sandbox, SandboxHandle
from debugtrace.sandbox.docker.sandbox import DockerSandbox
from debugtrace.sandbox.local import LocalSandbox
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

CAP = 16 * 1024
SETTINGS = Settings(sandbox_fetch_bytes=CAP)
PROJECT = ProjectSpec(kind="python", test_command=("true",))
WRITE = (
    "open('small.xml', 'w').write('<testsuite/>')\n"
    f"open('report.xml', 'w').write('<t>' + 'x' * {4 * CAP} + '</t>')\n"
)


@pytest.fixture(
    params=[
        "local",
        pytest.param("docker", marks=pytest.mark.docker),
    ]
)
def sandbox_and_python(request: pytest.FixtureRequest) -> tuple[Sandbox, str]:
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
        return DockerSandbox(SETTINGS.model_copy(update={"docker_image": IMAGE})), "python3"
    bwrap = shutil.which("bwrap") is not None
    return LocalSandbox(SETTINGS, use_bwrap=bwrap), sys.executable


@pytest.fixture
def handle(sandbox_and_python: tuple[Sandbox, str], tmp_path: Path) -> Iterator[SandboxHandle]:
    sandbox, _ = sandbox_and_python
    wt = tmp_path / "wt"
    wt.mkdir()
    h = sandbox.prepare(wt, PROJECT)
    yield h
    sandbox.close(h)


def test_a_report_larger_than_the_fetch_limit_is_left_out_and_said_so(
    sandbox_and_python: tuple[Sandbox, str], handle: SandboxHandle
) -> None:
    sandbox, python = sandbox_and_python
    r: Any = sandbox.run(
        handle,
        [python, "-c", WRITE],
        ResourceLimits(timeout_s=60),
        fetch=["report.xml", "small.xml", "missing.xml"],
    )
    assert r.exit_code == 0, r.output
    assert r.files == {"small.xml": b"<testsuite/>"}
    assert set(r.files_omitted) == {"report.xml"}
    assert str(CAP) in r.files_omitted["report.xml"]
    assert "report.xml not fetched" in r.output


def test_the_default_fetch_limit_is_16_mib() -> None:
    assert Settings().sandbox_fetch_bytes == 16 * 1024**2
    assert LocalSandbox(Settings(), use_bwrap=False).fetch_bytes == 16 * 1024**2
