"""Issue 14, items 8 and the low ones of the workspace stage: a checkout's size is bounded before
it is written; repository hosts on loopback/private addresses are refused (no port scanning from
the server); ssh never uses the server's keys or agent; checkouts a crashed run left are removed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def trace_doc(repo_url: str) -> dict[str, object]:
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"
    return {
        "developer_id": "d",
        "repo_url": repo_url,
        "bug_description": "b",
        "events": [{"type": "edit", "details": {"file": "a.txt", "diff": diff}}],
    }


def finalize(settings: Settings, repo_url: str, **changes: object):  # type: ignore[no-untyped-def]
    c = Collector(
        settings=settings.model_copy(update={"sandbox": "local", "grader": "heuristic", **changes})
    )
    done = c.finalize(str(c.submit(trace_doc(repo_url)).id))
    return {s.name: s for s in done.result.stages}


# -- item 8: the checkout's size ------------------------------------------------------------------


def test_a_checkout_larger_than_the_limit_is_refused_before_it_is_written(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "bomb"
    repo.mkdir()
    for i in range(4):  # 4 x 2 MiB of zeros: a few KiB in the mirror, 8 MiB checked out
        (repo / f"zeros{i}.bin").write_bytes(b"\0" * 2 * 2**20)
    (repo / "a.txt").write_text("a\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "bomb")
    from debugtrace.finalize import workspace

    calls: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(workspace.subprocess, "run", spy)
    stages = finalize(settings, str(repo), allow_local_repos=True, max_checkout_bytes=4 * 2**20)
    ws = stages["workspace"]
    assert ws.status == "failed"
    assert "DEBUGTRACE_MAX_CHECKOUT_BYTES" in ws.message
    assert stages["apply"].status == "skipped"
    assert not [c for c in calls if "checkout" in c], "the files were written, then measured"


def test_a_checkout_under_the_limit_is_made(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "small"
    repo.mkdir()
    (repo / "a.txt").write_text("a\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i")
    stages = finalize(settings, str(repo), allow_local_repos=True, max_checkout_bytes=1024)
    assert stages["workspace"].status == "ok"
    assert stages["apply"].status == "ok"


# -- low: repository hosts on private addresses -------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on 127.0.0.1 that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            seen.append(peer[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}/x.git",
        "https://localhost:{port}/x.git",
        "https://2130706433:{port}/x.git",  # 127.0.0.1 as one decimal number
        "https://[::ffff:127.0.0.1]:{port}/x.git",
        "ssh://git@127.0.0.1:{port}/x.git",
    ],
)
def test_a_repository_on_a_loopback_address_is_refused_without_connecting(
    settings: Settings, listener: tuple[int, list[str]], url: str
) -> None:
    port, seen = listener
    stages = finalize(settings, url.format(port=port))
    ws = stages["workspace"]
    assert ws.status == "failed"
    assert "non-public address" in ws.message
    assert "DEBUGTRACE_ALLOW_PRIVATE_REPOS" in ws.message
    time.sleep(0.3)
    assert seen == [], "git connected to the loopback port"


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.1", "169.254.169.254", "100.64.0.1"])
def test_private_link_local_and_cgnat_addresses_are_refused(
    settings: Settings, address: str
) -> None:
    ws = finalize(settings, f"https://{address}/x.git")["workspace"]
    assert ws.status == "failed"
    assert "non-public address" in ws.message


def test_the_operator_may_allow_private_addresses(
    settings: Settings, listener: tuple[int, list[str]]
) -> None:
    port, seen = listener
    stages = finalize(settings, f"https://127.0.0.1:{port}/x.git", allow_private_repos=True)
    assert stages["workspace"].status == "failed"
    assert "non-public" not in stages["workspace"].message
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen  # git did try the address


# -- low: ssh without the server's keys and agent -----------------------------------------------


def test_ssh_runs_without_the_servers_keys_or_agent(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "ssh-call"
    fake = bin_dir / "ssh"
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {record}\n'
        f'echo "SSH_AUTH_SOCK=$SSH_AUTH_SOCK" >> {record}\n'
        "exit 255\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    stages = finalize(settings, "ssh://git@93.184.215.14/x.git")  # a public address, no DNS
    assert stages["workspace"].status == "failed"
    call = record.read_text().splitlines()
    assert "SSH_AUTH_SOCK=" in call  # the agent's socket was not passed on
    for option in ("IdentitiesOnly=yes", "IdentityFile=/dev/null", "BatchMode=yes"):
        assert option in call
    assert call[call.index("-F") + 1] == "/dev/null"  # not the server user's ssh config
    assert "HostName=93.184.215.14" in call  # connects to the address that was checked


# -- low: leftovers of crashed runs ---------------------------------------------------------------


def test_checkouts_left_by_crashed_runs_are_removed_when_a_finalize_starts(
    settings: Settings,
) -> None:
    from filelock import FileLock

    checkouts = settings.data_dir / "checkouts"
    old, live, fresh = (checkouts / name for name in ("crashed-1", "running-2", "fresh-3"))
    for path in (old, live, fresh):
        (path / "after").mkdir(parents=True)
        (path / "after" / "f.txt").write_text("x")
    day_ago = time.time() - 24 * 3600
    for path in (old, live):
        os.utime(path, (day_ago, day_ago))
    with FileLock(str(live) + ".lock"):  # another process's run, still going
        finalize(settings, "https://127.0.0.1:9/x.git")
    assert not old.exists()
    assert live.exists() and fresh.exists()
    locks = {p.name for p in checkouts.iterdir() if p.name.endswith(".lock")}
    assert locks <= {"running-2.lock"}  # the finished run removed its own
