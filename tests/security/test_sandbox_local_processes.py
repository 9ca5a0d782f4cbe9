"""Issue 14, item 9: the local sandbox without bubblewrap honours its timeout, leaves no process
behind and, as root, runs the command as ``nobody``.

Before: a detached child holding stdout made ``timeout_s=3`` return after 25 s (never, with
``sleep infinity``), daemons outlived the run, and commands ran as root.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace.sandbox import ProjectSpec, ResourceLimits, RunResult, SandboxHandle
from debugtrace.sandbox.local import LocalSandbox
from support.services import require

PROJECT = ProjectSpec(kind="python", test_command=("true",))


def sleepers(seconds: str) -> list[int]:
    """Pids of ``sleep <seconds>`` processes (the tests use unlikely durations as markers)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"sleep", seconds.encode()]:
            found.append(int(name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique ``sleep`` duration; whatever still sleeps it at the end is killed (by pid)."""
    seconds = str(random.randint(10**6, 10**7))
    yield seconds
    for pid in sleepers(seconds):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(params=["no-bwrap", "bwrap"])
def sandbox(request: pytest.FixtureRequest) -> LocalSandbox:
    if request.param == "bwrap" and not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
    return LocalSandbox(use_bwrap=request.param == "bwrap")


@pytest.fixture
def handle(sandbox: LocalSandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
    wt = tmp_path / "wt"
    wt.mkdir()
    h = sandbox.prepare(wt, PROJECT)
    yield h
    sandbox.close(h)


def run_within(
    sandbox: LocalSandbox, handle: SandboxHandle, argv: list[str], timeout_s: float, wait_s: float
) -> RunResult | None:
    """The run's result, or None when ``run`` had not returned after ``wait_s``."""
    result: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: result.append(
            sandbox.run(handle, argv, ResourceLimits(timeout_s=timeout_s))
        ),
        daemon=True,
    )
    thread.start()
    thread.join(wait_s)
    return result[0] if result else None


def test_the_timeout_holds_when_a_detached_child_keeps_stdout_open(
    sandbox: LocalSandbox, handle: SandboxHandle, marker: str
) -> None:
    start = time.monotonic()
    argv = ["sh", "-c", f"setsid sleep {marker} & echo started; sleep {marker}"]
    r = run_within(sandbox, handle, argv, timeout_s=3, wait_s=20)
    took = time.monotonic() - start
    assert r is not None, "run() had not returned 20 s after a 3 s timeout"
    assert r.timed_out and r.exit_code is None
    assert "started" in r.output
    assert took < 10, took
    assert sleepers(marker) == []


def test_a_detached_child_holding_stdout_does_not_delay_a_finished_command(
    sandbox: LocalSandbox, handle: SandboxHandle, marker: str
) -> None:
    start = time.monotonic()
    # (the pause lets the child leave the process group before the command ends)
    argv = ["sh", "-c", f"setsid sleep {marker} & sleep 0.5; echo done"]
    r = run_within(sandbox, handle, argv, timeout_s=60, wait_s=20)
    assert r is not None, "run() had not returned after 20 s"
    assert (r.exit_code, r.timed_out) == (0, False)
    assert time.monotonic() - start < 10
    assert sleepers(marker) == []


def test_daemons_do_not_outlive_the_run(
    sandbox: LocalSandbox, handle: SandboxHandle, marker: str
) -> None:
    # double fork, new session, output elsewhere: the classic daemon
    argv = [
        "sh",
        "-c",
        f"(setsid sh -c 'sleep {marker}' </dev/null >/dev/null 2>&1 &); sleep 0.5; echo ok",
    ]
    r = run_within(sandbox, handle, argv, timeout_s=30, wait_s=20)
    assert r is not None and r.exit_code == 0, r
    time.sleep(0.2)
    assert sleepers(marker) == []


def test_as_root_the_command_runs_as_nobody(sandbox: LocalSandbox, handle: SandboxHandle) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges (this test runs as a normal user)")
    r = sandbox.run(handle, ["sh", "-c", "id -u; id -G; cat /proc/self/status"], ResourceLimits())
    assert r.exit_code == 0, r.output
    uid, groups, *status = r.output.splitlines()
    assert (uid, groups) == ("65534", "65534")
    caps = dict(line.split(":\t", 1) for line in status if line.startswith("Cap"))
    assert set(caps.values()) == {"0000000000000000"}, caps  # incl. inheritable and bounding
    assert "NoNewPrivs:\t1" in status
