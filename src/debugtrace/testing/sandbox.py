"""The sandbox contract: behaviour every sandbox backend (``local``, ``docker``, a plugin's) must
have. Reuse it as ``from debugtrace.testing import SandboxContract``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace.sandbox import ProjectSpec, ResourceLimits, RunResult, Sandbox, SandboxHandle

__all__ = ["SandboxContract"]


class SandboxContract:
    """Behaviour every :class:`~debugtrace.sandbox.Sandbox` must have. Provide a ``sandbox``
    fixture (and optionally ``python``: the interpreter argv inside the sandbox) in a subclass."""

    @pytest.fixture
    def sandbox(self) -> Sandbox:
        raise NotImplementedError("subclasses provide a `sandbox` fixture")

    @pytest.fixture
    def python(self) -> list[str]:
        """How to run Python inside the sandbox."""
        return ["python3"]

    @pytest.fixture
    def handle(self, sandbox: Sandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
        worktree = tmp_path / "worktree"
        worktree.mkdir()
        (worktree / "hello.txt").write_text("hello from the worktree\n")
        h = sandbox.prepare(worktree, ProjectSpec(kind="python", test_command=("true",)))
        yield h
        sandbox.close(h)
        sandbox.close(h)  # idempotent

    def run(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str], code: str, **limits: Any
    ) -> RunResult:
        return sandbox.run(handle, [*python, "-c", code], ResourceLimits(**limits))

    def test_runs_in_the_worktree_with_its_files(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        r = self.run(sandbox, handle, python, "print(open('hello.txt').read().strip())")
        assert r.exit_code == 0, r.output
        assert r.output.strip() == "hello from the worktree"
        assert not r.timed_out

    def test_every_run_has_the_same_time_zone_hash_seed_and_locale(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = (
            "import os, time\n"
            "print(os.environ.get('TZ'), os.environ.get('PYTHONHASHSEED'),"
            " os.environ.get('LC_ALL'), time.strftime('%Z'), hash('debugtrace'))"
        )
        first = self.run(sandbox, handle, python, code)
        second = self.run(sandbox, handle, python, code)
        assert first.exit_code == 0, first.output
        tz, seed, locale, zone, _ = first.output.split()
        assert (tz, seed, locale, zone) == ("UTC", "0", "C.UTF-8", "UTC")
        assert first.output == second.output  # str hashes too: the same seed every run

    def test_temporary_files_can_be_written(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = (
            "import tempfile\n"
            "with tempfile.TemporaryFile() as f:\n    f.write(b'x')\n"
            "print('TMP OK')"
        )
        r = self.run(sandbox, handle, python, code)
        assert "TMP OK" in r.output, r.output

    def test_exit_codes_and_stderr_come_back(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        r = self.run(sandbox, handle, python, "import sys; print('out'); sys.exit('err')")
        assert r.exit_code == 1
        assert "out" in r.output and "err" in r.output

    def test_argv_is_not_interpreted_by_a_shell(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        r = self.run(sandbox, handle, python, "import sys; print(sys.argv)")
        assert r.exit_code == 0
        r = sandbox.run(
            handle,
            [*python, "-c", "import sys; print(sys.argv[1])", "$(echo hi); ls"],
            ResourceLimits(),
        )
        assert r.output.strip() == "$(echo hi); ls"

    def test_files_written_persist_between_runs_and_can_be_fetched(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        self.run(sandbox, handle, python, "open('report.xml', 'w').write('<ok/>')")
        r = sandbox.run(
            handle,
            [*python, "-c", "print(open('report.xml').read())"],
            ResourceLimits(),
            fetch=["report.xml", "missing.xml"],
        )
        assert r.output.strip() == "<ok/>"
        assert r.files == {"report.xml": b"<ok/>"}

    def test_huge_output_keeps_head_and_tail_and_counts_all(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = "import sys\nprint('FIRST')\nfor _ in range(200000): print('x' * 99)\nprint('LAST')"
        r = self.run(sandbox, handle, python, code, output_bytes=10_000)
        assert r.exit_code == 0
        assert r.output.startswith("FIRST") and r.output.rstrip().endswith("LAST")
        assert len(r.output.encode()) <= 10_000
        assert r.output_bytes >= 200000 * 100

    def test_a_hanging_command_is_killed_with_its_children(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = (
            "import subprocess, time\n"
            "subprocess.Popen(['sleep', '300'])\n"
            "print('started', flush=True)\n"
            "time.sleep(300)"
        )
        start = time.monotonic()
        r = self.run(sandbox, handle, python, code, timeout_s=2)
        assert r.timed_out
        assert r.exit_code is None
        assert "started" in r.output
        assert time.monotonic() - start < 30
        assert 1.5 < r.duration_s < 30

    def test_no_network_by_default(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        try:
            code = (
                "import socket\n"
                f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
                "    print('CONNECTED')\n"
                "except OSError as e:\n    print('refused', e)"
            )
            r = self.run(sandbox, handle, python, code)
        finally:
            listener.close()
        assert "refused" in r.output, r.output

    def test_host_secrets_are_not_in_the_environment(
        self,
        sandbox: Sandbox,
        handle: SandboxHandle,
        python: list[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
        monkeypatch.setenv("DEBUGTRACE_DATABASE_URL", "postgresql://secret")
        r = self.run(sandbox, handle, python, "import os; print(sorted(os.environ))")
        assert "OPENAI_API_KEY" not in r.output
        assert "DEBUGTRACE_" not in r.output

    def test_memory_is_limited(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = "b = bytearray(800 * 1024 * 1024); print('ALLOCATED')"
        r = self.run(sandbox, handle, python, code, memory_bytes=256 * 1024 * 1024)
        assert r.exit_code != 0
        assert "ALLOCATED" not in r.output

    def test_file_size_is_limited(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = (
            "f = open('big.bin', 'wb')\n"
            "for _ in range(64): f.write(b'0' * 1024 * 1024)\n"
            "print('WROTE')"
        )
        r = self.run(sandbox, handle, python, code, file_size_bytes=8 * 1024 * 1024)
        assert r.exit_code != 0
        assert "WROTE" not in r.output

    def test_a_fork_bomb_is_contained(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str]
    ) -> None:
        code = (
            "import os, time\n"
            "for _ in range(10000):\n"
            "    try:\n        os.fork() or time.sleep(60)\n"
            "    except OSError:\n        print('HIT LIMIT', flush=True)\n        break\n"
        )
        start = time.monotonic()
        r = self.run(sandbox, handle, python, code, processes=64, timeout_s=10)
        assert time.monotonic() - start < 60
        # Either the process limit stopped it, or the timeout did; its sleeping children go too.
        assert "HIT LIMIT" in r.output or r.timed_out

    def test_the_host_outside_the_worktree_is_not_writable(
        self, sandbox: Sandbox, handle: SandboxHandle, python: list[str], tmp_path: Path
    ) -> None:
        outside = tmp_path / "outside.txt"
        code = (
            f"import sys\ntry:\n    open({str(outside)!r}, 'w').write('x')\n"
            "    open('/etc/debugtrace-probe', 'w').write('x')\n"
            "    print('WROTE')\nexcept OSError as e:\n    print('denied', e)"
        )
        r = self.run(sandbox, handle, python, code)
        assert "WROTE" not in r.output
        assert not outside.exists()
        assert not Path("/etc/debugtrace-probe").exists()
