"""The ``local`` sandbox: a subprocess in the worktree, contained as far as this host allows.

Layers, each used when available:

- ``bwrap`` (bubblewrap): no network, read-only system, private /tmp and PID namespace, and the
  invoking user's home hidden (root's ``/root`` becomes an empty tmpfs, with only the Python
  installation that runs the tests bound back read-only).
- When running as root: the command drops to ``nobody`` (``setpriv``) so it cannot write the host's
  files and the process limit applies (the kernel never enforces it for root).
- ``prlimit``: CPU seconds, address space (memory), largest file, number of processes.
- A timeout that kills the whole process tree (process group, PID namespace) and reaps it.
- A scrubbed environment: only PATH, HOME, LANG and the project's own variables reach the command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from debugtrace.config import Settings
from debugtrace.sandbox import (
    ProjectSpec,
    ResourceLimits,
    RunResult,
    Sandbox,
    SandboxError,
    SandboxHandle,
)
from debugtrace.textutil import BoundedOutput

__all__ = ["LocalSandbox"]

NOBODY = 65534
WORKSPACE = "/tmp/workspace"
"""Where the worktree appears inside bubblewrap (the same path as in the docker sandbox)."""


def _scrubbed_env(project: ProjectSpec, home: str) -> dict[str, str]:
    # Nothing of the host's environment leaks in (API keys, DEBUGTRACE_* URLs with passwords).
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        "PATH": path,
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # The interpreter is debugtrace's own: the pytest plugins installed next to it belong to
        # debugtrace's environment, not to the project under test (and slow every run down).
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        **project.env,
    }


class LocalSandbox(Sandbox):
    """Runs commands as local subprocesses with the isolation layers above."""

    name = "local"
    python = sys.executable

    def __init__(self, settings: Settings | None = None, *, use_bwrap: bool | None = None) -> None:
        self.settings = settings
        bwrap = shutil.which("bwrap")
        self.bwrap = bwrap if use_bwrap is not False else None
        if use_bwrap and not bwrap:
            raise SandboxError("bubblewrap is not installed: apt-get install bubblewrap")
        self.as_root = os.geteuid() == 0
        self.prlimit = shutil.which("prlimit")
        self.setpriv = shutil.which("setpriv")

    @property
    def isolation(self) -> str:
        """A one-line description of the layers in use (recorded in the tests stage log)."""
        parts = []
        parts.append("bwrap (no network, read-only system)" if self.bwrap else "no bwrap")
        if self.as_root:
            parts.append("runs as nobody" if self._drops_privileges else "runs as root")
        parts.append("rlimits" if self.prlimit else "no rlimits")
        return ", ".join(parts)

    @property
    def _drops_privileges(self) -> bool:
        # Without bwrap, nobody could not reach an interpreter under /root; stay root then.
        return self.as_root and bool(self.setpriv) and bool(self.bwrap)

    def prepare(self, worktree: Path, project: ProjectSpec) -> SandboxHandle:
        worktree = worktree.resolve()
        if not worktree.is_dir():
            raise SandboxError(f"worktree {worktree} does not exist")
        if self._drops_privileges:
            _chown_tree(worktree, NOBODY)
        return SandboxHandle(worktree=worktree, project=project)

    def _command(
        self, handle: SandboxHandle, argv: Sequence[str], limits: ResourceLimits
    ) -> list[str]:
        cmd: list[str] = []
        wt = str(handle.worktree)
        if self.bwrap:
            cmd += [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            cmd += ["--perms", "1777", "--tmpfs", "/tmp"]  # writable by the tests, like /tmp
            hidden = [Path("/tmp")]
            home = Path.home()
            if home != Path("/"):
                cmd += ["--tmpfs", str(home)]  # hide the invoking user's files (keys, configs)
                hidden.append(home)
            # The Python that runs the tests may live in a hidden place (a venv under /tmp or
            # the home directory): bind it back, read-only.
            for keep in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}):
                root = next((h for h in hidden if keep.is_relative_to(h)), None)
                if root is None:
                    continue
                # Folders bwrap makes on the way are root-only (0700) unless told otherwise.
                for parent in reversed(keep.parents):
                    if parent.is_relative_to(root) and parent != root:
                        cmd += ["--perms", "0755", "--dir", str(parent)]
                cmd += ["--ro-bind", str(keep), str(keep)]
            # A fixed, neutral path: the host path's parents may not be readable as nobody.
            cmd += ["--bind", wt, WORKSPACE, "--chdir", WORKSPACE]
            cmd += ["--die-with-parent", "--new-session"]
            cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            if not limits.network:
                cmd += ["--unshare-net"]
            if not self.as_root:
                cmd += ["--unshare-user"]
            cmd += ["--"]
        if self.prlimit:
            cmd += [self.prlimit]
            if limits.cpu_s is not None:
                cmd += [f"--cpu={limits.cpu_s}"]
            if limits.memory_bytes is not None:
                cmd += [f"--as={limits.memory_bytes}"]
            if limits.file_size_bytes is not None:
                cmd += [f"--fsize={limits.file_size_bytes}"]
            if limits.processes is not None and (self._drops_privileges or not self.as_root):
                cmd += [f"--nproc={limits.processes}"]
            cmd += ["--"]
        if self._drops_privileges and self.setpriv:
            cmd += [self.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            cmd += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        return [*cmd, *argv]

    def run(
        self,
        handle: SandboxHandle,
        argv: Sequence[str],
        limits: ResourceLimits,
        *,
        fetch: Sequence[str] = (),
    ) -> RunResult:
        if not argv:
            raise SandboxError("empty command")
        cmd = self._command(handle, argv, limits)
        home = "/tmp" if self.bwrap else str(handle.worktree)
        out = BoundedOutput(limits.output_bytes)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=handle.worktree,
                env=_scrubbed_env(handle.project, home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills all of it
            )
        except OSError as exc:
            return RunResult(None, f"cannot start {argv[0]!r}: {exc}", 0.0)
        assert proc.stdout is not None
        reader = threading.Thread(target=out.drain, args=(proc.stdout,), daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Kill what is left of the group even after a normal exit (background children).
            _kill_group(proc.pid)
            proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
        duration = time.monotonic() - start
        code = None if timed_out else proc.returncode
        if code is not None and code < 0:
            code = 128 - code  # killed by a signal: report it the way a shell would (137 = KILL)
        return RunResult(
            exit_code=code,
            output=out.text(),
            duration_s=duration,
            timed_out=timed_out,
            output_bytes=out.total,
            files=_fetch(handle.worktree, fetch),
        )

    def close(self, handle: SandboxHandle) -> None:
        """Nothing outlives a run (each run reaps its whole process group)."""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _fetch(worktree: Path, names: Sequence[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in names:
        path = (worktree / name).resolve()
        # The command could have planted a symlink to a host file; only read inside the worktree.
        if not path.is_relative_to(worktree) or not path.is_file():
            continue
        files[name] = path.read_bytes()
    return files
