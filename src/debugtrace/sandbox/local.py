"""The ``local`` sandbox: a subprocess in the worktree, contained as far as this host allows.

Every command runs under a small *supervisor* (Python, the code in ``_SUPERVISOR``) that makes
itself the child subreaper, starts the command with its resource limits and, when the command
ends or the run is stopped, kills every process the command left behind, including daemons that
changed their process group or session, before it exits. Layers, each used when available:

- ``bwrap`` (bubblewrap): a new root made of an allow-list, never the host's ``/``: the system's
  ``/usr`` (and the ``/bin``, ``/lib*`` links to it), the ``/etc`` files Python, git and the C
  library read (``ld.so``, CA certificates, ``alternatives``, time zone; ``passwd``, ``group`` and
  ``hosts`` are written fresh), the interpreter that runs the tests and its environment (venv),
  read-only, and the worktree, read-write, at ``/tmp/workspace`` with its ``.git`` read-only.
  No ``/run``, ``/var``, ``/home``, ``/root``, ``/srv``, no data directory: no host Unix socket
  (database, ssh-agent, session bus, docker) and no host file outside the allow-list can be
  reached. ``/tmp`` and ``/dev/shm`` are fresh tmpfs of ``DEBUGTRACE_SANDBOX_TMP_BYTES`` each;
  no network (not even the host's loopback), private PID, IPC and UTS namespaces.
- When running as root: the command runs as ``nobody`` (``setresuid``, no supplementary groups,
  empty capability bounding set, ``no_new_privs``), so it cannot write the host's files and
  the process limit applies (the kernel never enforces it for root). Without bubblewrap the
  supervisor also gives it a network namespace of its own (loopback only). Without bubblewrap
  the interpreter and the worktree must be reachable by ``nobody``; otherwise the command fails
  to start, saying so.
- Resource limits (``setrlimit``): CPU seconds, address space (memory), largest file, number of
  processes, no core files.
- Disk: the checkout may grow by ``DEBUGTRACE_SANDBOX_DISK_BYTES`` at most; the run is stopped
  (``limit_hit="disk"``) when it grows beyond (checked while it runs).
- A timeout that is honoured whatever the command does with its output pipe, and kills the
  whole process tree.
- A scrubbed environment: only PATH, HOME, LANG and the project's own variables reach the command.

Without bubblewrap there is no file system isolation: the command sees the host's files and Unix
sockets with the rights of ``nobody`` (as root) or of the invoking user, writes to the host's
``/tmp`` (not bounded), and, run by a normal user, shares the host's network and could kill its
own supervisor (then a detached process may survive the run). Install bubblewrap (or use the
``docker`` sandbox) wherever the code under test is not your own.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from debugtrace.sandbox import (
    DEFAULT_FETCH_BYTES,
    ProjectSpec,
    ResourceLimits,
    RunResult,
    Sandbox,
    SandboxError,
    SandboxHandle,
    fetch_note,
    omitted_notes,
)
from debugtrace.textutil import BoundedOutput

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["LocalSandbox", "disk_usage"]

NOBODY = 65534
WORKSPACE = "/tmp/workspace"
"""Where the worktree appears inside bubblewrap (the same path as in the docker sandbox)."""

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Bound read-only (or recreated as the same symlinks into /usr, on merged-/usr systems)."""
_ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "lsb-release",
    "magic",
    "maven/logging",
    "maven/m2.conf",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "protocols",
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "terminfo",
    "timezone",
)
"""What is read from the host's /etc (never ``ssl/private``, ``gitconfig``, ``npmrc``,
``pip.conf``, ``maven/settings.xml`` (it holds server passwords: only Maven's launcher config
``m2.conf`` and ``logging`` are bound), ``shadow``, credentials or service configs); plus
``java-*`` and ``python3*`` folders when present."""
_ETC_GLOBS = ("java-*", "python3*")
_HIDDEN_UNDER_USR = ("/usr/local/etc",)
"""Configuration folders under /usr hidden behind an empty read-only tmpfs (npm's global
``npmrc`` lives in /usr/local/etc and may hold a registry token)."""
_FORBIDDEN_ROOTS = ("/", "/root", "/home", "/tmp", "/var", "/run", "/srv", "/etc", "/proc", "/dev")
"""Never bound as "the interpreter's environment" (they hold far more than an interpreter)."""


def _too_wide(path: Path) -> bool:
    """Whether binding ``path`` would show test code far more than an interpreter or a project
    environment: a system root, a home folder."""
    return str(path) in _FORBIDDEN_ROOTS or path.parent == Path("/home") or path == Path.home()


_CAPS_FOR_SUPERVISOR = (
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_KILL",
    "CAP_DAC_READ_SEARCH",
)
"""All that root keeps inside bubblewrap, for the supervisor: to enter the worktree (owned by
nobody, possibly 0700), become nobody and kill what nobody started. The command has none."""

_POLL_S = 0.25
_PIPE_GRACE_S = 2.0
"""How long the output pipe may stay open after the command's supervisor exited (something it
could not kill holds it) before the run stops reading."""
_STOP_GRACE_S = 5.0
_DISK_CHECK_S = 0.5
_SETTLE_BYTES = 1024**2

# The supervisor: ``python -I -S -c _SUPERVISOR CONFIG_JSON ARGV...``. Kept to the standard
# library and to what must happen in the process tree itself; the host side is LocalSandbox.run.
_SUPERVISOR = r"""
import ctypes, os, resource, signal, sys, time
import warnings  # os.execvp imports it: after dropping to nobody the stdlib may be unreadable

CFG = dict(item.split("=", 1) for item in sys.argv[1].split())  # name=int pairs
ARGV = sys.argv[2:]
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 36, 24, 38
CLONE_NEWNET, SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x40000000, 0x8913, 0x8914, 0x1


def say(text):
    os.write(2, ("debugtrace sandbox: " + text + "\n").encode("utf-8", "replace"))


def own_netns():
    import fcntl, socket, struct

    if LIBC.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def descendants():
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in parents.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def kill_all():
    # Orphans are re-parented to us (the subreaper), so repeating until nothing is left also
    # catches what was forked while we were killing.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = descendants()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reap()
        time.sleep(0.002)
    reap()


def child():
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for name, text in CFG.items():
            if not name.startswith("RLIMIT_"):
                continue
            res, value = getattr(resource, name), int(text)
            hard = resource.getrlimit(res)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(res, (value, value))
        if "uid" in CFG:
            uid, gid = int(CFG["uid"]), int(CFG["gid"])
            for cap in range(64):
                LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            # and no inheritable capabilities either (bwrap leaves the ones it was told to add)
            LIBC.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
        if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        os.execvp(ARGV[0], ARGV)
    except BaseException as exc:
        who = " (it runs as nobody: install bubblewrap)" if "hint" in CFG else ""
        say("cannot start %r: %s%s" % (ARGV[0], exc, who))
    os._exit(127)


def main():
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if "netns" in CFG:
        try:
            own_netns()
        except OSError as exc:
            say("cannot give the command a network namespace of its own: %s" % exc)
            os._exit(126)

    def stop(signum, frame):
        kill_all()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    pid = os.fork()
    if pid == 0:
        child()
    # Hold no copy of the output pipe: its end of file then means every process is gone.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    status = None
    while status is None:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if got == pid:
            status = st
    kill_all()
    code = os.waitstatus_to_exitcode(status) if status is not None else 125
    os._exit(128 - code if code < 0 else code)


main()
"""


def _setting(settings: Settings | None, name: str) -> int:
    if settings is not None:
        return int(getattr(settings, name))
    from debugtrace.config import Settings

    return int(Settings.model_fields[name].default)


DETERMINISM = {"TZ": "UTC", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
"""Every run's time zone, hash seed and locale: the same test gives the same outcome anywhere."""


def _scrubbed_env(project: ProjectSpec, home: str, workspace: str) -> dict[str, str]:
    # Nothing of the host's environment leaks in (API keys, DEBUGTRACE_* URLs with passwords).
    env = project.environment
    system = ["/usr/local/bin", "/usr/bin", "/bin"]
    if env is not None:
        # the project's own environment: its interpreter and tools, its pytest plugins autoload
        first = [d.replace("{workspace}", workspace) for d in env.bin_dirs]
        extra = {k: v.replace("{workspace}", workspace) for k, v in env.env.items()}
    else:
        # debugtrace's own interpreter: the pytest plugins installed next to it belong to
        # debugtrace's environment, not to the project under test (and slow every run down)
        first = [str(Path(sys.executable).parent)]
        extra = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return {
        "PATH": os.pathsep.join(first + system),
        "HOME": home,
        **DETERMINISM,
        "PYTHONUNBUFFERED": "1",
        # the checkout's .git stays ours (read-only to the command): git must not refuse it as
        # "dubious ownership" when the command runs as nobody
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        **extra,
        **project.env,
    }


def _python_paths() -> list[tuple[Path, Path]]:
    """(source, destination) pairs that make the running interpreter work inside bubblewrap:
    its prefixes (the venv and the installation it was made from), resolved and as named."""
    pairs: dict[Path, Path] = {}
    named = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    for name in sorted(named):
        dest = Path(os.path.abspath(name))
        real = dest.resolve()
        for path in (dest, real):
            if path.is_relative_to("/usr"):
                continue  # bound with the system
            if _too_wide(path):
                raise SandboxError(
                    f"the interpreter's environment {path} is too wide a folder to show to test "
                    "code; run debugtrace from a virtual environment or a Python installation "
                    "of its own"
                )
            pairs[path] = real
    # a prefix inside another one is bound with it
    return [
        (src, dest)
        for dest, src in sorted(pairs.items())
        if not any(dest != other and dest.is_relative_to(other) for other in pairs)
    ]


def _passwd(uid: int, gid: int) -> tuple[bytes, bytes]:
    """A /etc/passwd and /etc/group naming only root, nobody and the command's own user."""
    users = {0: ("root", 0), NOBODY: ("nobody", NOBODY)}
    users.setdefault(uid, ("sandbox", gid))
    passwd = "".join(
        f"{name}:x:{u}:{g}:{name}:/tmp:/bin/sh\n" for u, (name, g) in sorted(users.items())
    )
    groups = {0: "root", NOBODY: "nogroup"}
    groups.setdefault(gid, "sandbox")
    group = "".join(f"{name}:x:{g}:\n" for g, name in sorted(groups.items()))
    return passwd.encode(), group.encode()


_HOSTS = b"127.0.0.1\tlocalhost\n127.0.1.1\tsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _data_fd(data: bytes) -> int:
    """A pipe's read end holding ``data`` (for bwrap's ``--ro-bind-data``)."""
    r, w = os.pipe()
    try:
        if len(data) > 60_000:  # a pipe buffer holds 64 KiB; these files are tiny
            raise SandboxError("synthetic file too large for a pipe")
        os.write(w, data)
    finally:
        os.close(w)
    return r


def disk_usage(root: Path) -> int:
    """Bytes the tree at ``root`` takes on disk (hard links once, symlinks not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
    return total


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class _DiskGuard:
    """Watches how much the worktree grew since ``prepare`` while a command runs.

    A cheap trigger (the file system's free space fell by more than what is left of the
    allowance) decides when to measure the tree itself, so a big checkout is not walked twice a
    second; other writers on the same file system only cause rate-limited measurements.
    """

    def __init__(self, handle: SandboxHandle, allowance: int) -> None:
        self.handle = handle
        self.worktree = handle.worktree
        self.limit: int = handle.state["base_bytes"] + allowance
        self.used: int = handle.state["used_bytes"]  # as measured after the last run
        self.free0 = _free_bytes(self.worktree)
        self.next_check = 0.0
        self.next_walk = 0.0

    def settle(self) -> None:
        """After the run: measure the tree again when the file system says something was
        written (the next run's trigger starts from there)."""
        try:
            changed = abs(self.free0 - _free_bytes(self.worktree)) > _SETTLE_BYTES
        except OSError:
            changed = True
        if changed:
            self.handle.state["used_bytes"] = disk_usage(self.worktree)

    def exceeded(self, now: float) -> bool:
        """Whether the worktree is now larger than allowed (measured only when it may be)."""
        if now < self.next_check:
            return False
        self.next_check = now + _DISK_CHECK_S
        try:
            consumed = self.free0 - _free_bytes(self.worktree)
        except OSError:
            return False
        if consumed <= self.limit - self.used or now < self.next_walk:
            return False
        began = time.monotonic()
        size = disk_usage(self.worktree)
        self.next_walk = now + max(2.0, 5 * (time.monotonic() - began))
        return size > self.limit


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
        # bubblewrap gives each run its own network, PID and IPC namespaces and /tmp
        self.isolates_runs = self.bwrap is not None
        self.tmp_bytes = _setting(settings, "sandbox_tmp_bytes")
        self.disk_bytes = _setting(settings, "sandbox_disk_bytes")
        self.fetch_bytes = _setting(settings, "sandbox_fetch_bytes") or DEFAULT_FETCH_BYTES
        self.data_dir: Path | None = (
            Path(settings.data_dir).resolve() if settings is not None else None
        )

    @property
    def isolation(self) -> str:
        """A one-line description of the layers in use (recorded in the tests stage log)."""
        parts = [
            "bwrap (allow-listed read-only system, no host sockets, no network, private /tmp)"
            if self.bwrap
            else "no bwrap (host files and sockets visible"
            + ("; own network namespace)" if self.as_root else "; host network)")
        ]
        if self.as_root:
            parts.append("runs as nobody")
        parts.append("rlimits, disk allowance, every leftover process killed")
        return ", ".join(parts)

    def prepare(self, worktree: Path, project: ProjectSpec) -> SandboxHandle:
        """Check the worktree, hand it to ``nobody`` when running as root (its ``.git`` stays
        ours) and measure it for the disk allowance."""
        worktree = worktree.resolve()
        if not worktree.is_dir():
            raise SandboxError(f"worktree {worktree} does not exist")
        env = project.environment
        for name, target in env.links.items() if env is not None else ():
            link = worktree / name
            if "/" not in name and not os.path.lexists(link):
                link.symlink_to(target)  # node_modules: read-only in the environment
        if self.as_root:
            _chown_tree(worktree, NOBODY)
        handle = SandboxHandle(worktree=worktree, project=project)
        handle.state["base_bytes"] = handle.state["used_bytes"] = disk_usage(worktree)
        return handle

    # -- the command line ----------------------------------------------------------------------

    def _bwrap_args(self, handle: SandboxHandle, fds: list[int], info_fd: int) -> list[str]:
        assert self.bwrap is not None
        args = [self.bwrap, "--info-fd", str(info_fd)]
        args += ["--die-with-parent", "--new-session", "--unshare-net"]
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--hostname", "sandbox"]
        if self.as_root:
            # root keeps every capability inside bwrap unless told otherwise
            args += ["--cap-drop", "ALL"]
            for cap in _CAPS_FOR_SUPERVISOR:
                args += ["--cap-add", cap]
        else:
            args += ["--unshare-user"]
        made: set[Path] = {Path("/")}

        def folder(path: Path) -> None:
            # Folders bwrap makes on the way are root-only (0700) unless told otherwise.
            for p in [*reversed(path.parents), path]:
                if p not in made:
                    made.add(p)
                    args.extend(["--perms", "0755", "--dir", str(p)])

        for top in _SYSTEM_DIRS:
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
                made.add(Path(top))
        for hidden in _HIDDEN_UNDER_USR:  # host configuration that may hold credentials
            if os.path.isdir(hidden) and not os.path.islink(hidden):
                args += ["--tmpfs", hidden, "--remount-ro", hidden]
        folder(Path("/etc"))
        etc = Path("/etc")
        entries = [etc / e for e in _ETC]
        for pattern in _ETC_GLOBS:
            entries += sorted(etc.glob(pattern))
        for entry in entries:
            if entry.exists():
                folder(entry.parent)
                args += ["--ro-bind", str(entry), str(entry)]
        uid = NOBODY if self.as_root else os.getuid()
        gid = NOBODY if self.as_root else os.getgid()
        passwd, group = _passwd(uid, gid)
        for data, dest in ((passwd, "/etc/passwd"), (group, "/etc/group"), (_HOSTS, "/etc/hosts")):
            fd = _data_fd(data)
            fds.append(fd)
            args += ["--perms", "0644", "--ro-bind-data", str(fd), dest]
        args += ["--dev", "/dev", "--proc", "/proc"]
        args += ["--size", str(self.tmp_bytes), "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--remount-ro", "/dev"]  # its own tmpfs would be an unbounded scratch space
        args += ["--size", str(self.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        made.add(Path("/tmp"))
        folder(Path("/var"))
        args += ["--symlink", "../tmp", "/var/tmp"]
        bound: list[Path] = []
        for source, target in _python_paths():
            folder(target.parent)
            args += ["--ro-bind", str(source), str(target)]
            made.add(target)
            bound.append(target)
        env = handle.project.environment
        for bind in env.binds if env is not None else ():
            # the project's environment and its interpreter's installation, at the same path
            # (a venv names its interpreter by absolute path)
            if bind.is_relative_to("/usr") or any(bind.is_relative_to(b) for b in bound):
                continue
            if _too_wide(bind):
                raise SandboxError(
                    f"the project environment needs {bind} shown to test code, too wide a folder; "
                    "install that Python in a folder of its own (or set DEBUGTRACE_PYTHON)"
                )
            folder(bind.parent)
            args += ["--ro-bind", str(bind), str(bind)]
            made.add(bind)
            bound.append(bind)
        wt = handle.worktree
        args += ["--bind", str(wt), WORKSPACE]
        git = wt / ".git"
        if git.exists() and not git.is_symlink():  # a folder, or a `gitdir:` file
            # test code cannot plant hooks or config for git commands run later on the host
            args += ["--ro-bind", str(git), f"{WORKSPACE}/.git"]
            for objects in self._alternates(git) if git.is_dir() else []:
                folder(objects.parent)
                args += ["--ro-bind", str(objects), str(objects)]
        args += ["--remount-ro", "/", "--chdir", WORKSPACE, "--"]
        return args

    def _alternates(self, git: Path) -> list[Path]:
        """The object folders a ``git clone --shared`` checkout borrows from (its mirror), so git
        works inside: only folders in the data directory's ``mirrors``, named ``objects``."""
        if self.data_dir is None:
            return []
        mirrors = self.data_dir / "mirrors"
        try:
            text = (git / "objects" / "info" / "alternates").read_text()[:10_000]
        except (OSError, UnicodeDecodeError):
            return []
        found = []
        for line in text.splitlines()[:10]:
            path = Path(line.strip())
            if not path.is_absolute():
                continue
            real = path.resolve()
            if real.name == "objects" and real.is_dir() and real.is_relative_to(mirrors):
                found.append(real)
        return found

    def _supervisor_config(self, limits: ResourceLimits) -> str:
        """The supervisor's settings, ``name=int`` pairs (json would cost its start-up time)."""
        cfg: dict[str, int | None] = {
            "RLIMIT_CORE": 0,
            "RLIMIT_CPU": limits.cpu_s,
            "RLIMIT_AS": limits.memory_bytes,
            "RLIMIT_FSIZE": limits.file_size_bytes,
            "RLIMIT_NPROC": limits.processes,
        }
        if self.as_root:
            cfg.update(uid=NOBODY, gid=NOBODY)
            if not self.bwrap:
                cfg.update(netns=1, hint=1)
        return " ".join(f"{k}={int(v)}" for k, v in cfg.items() if v is not None)

    def _command(
        self,
        handle: SandboxHandle,
        argv: Sequence[str],
        limits: ResourceLimits,
        fds: list[int],
        info_fd: int | None,
    ) -> list[str]:
        cmd = self._bwrap_args(handle, fds, info_fd) if info_fd is not None else []
        cfg = self._supervisor_config(limits)
        return [*cmd, sys.executable, "-I", "-S", "-B", "-c", _SUPERVISOR, cfg, *argv]

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        handle: SandboxHandle,
        argv: Sequence[str],
        limits: ResourceLimits,
        *,
        fetch: Sequence[str] = (),
    ) -> RunResult:
        """Run ``argv`` in the worktree within ``limits``; see the module doc for the layers."""
        if not argv:
            raise SandboxError("empty command")
        if limits.network:
            raise SandboxError(
                "the local sandbox never gives commands the network (the host's loopback "
                "services would be reachable); use the docker sandbox"
            )
        fds: list[int] = []
        info_r: int | None = None
        try:
            info_w: int | None = None
            if self.bwrap:
                info_r, info_w = os.pipe()
                fds.append(info_w)
            cmd = self._command(handle, argv, limits, fds, info_w)
            home = "/tmp" if self.bwrap else str(handle.worktree)
            workspace = WORKSPACE if self.bwrap else str(handle.worktree)
            guard = _DiskGuard(handle, self.disk_bytes)
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=handle.worktree,
                    env=_scrubbed_env(handle.project, home, workspace),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=fds,
                    start_new_session=True,  # its own process group: a timeout kills all of it
                )
            except OSError as exc:
                return RunResult(None, f"cannot start {argv[0]!r}: {exc}", 0.0)
        finally:
            for fd in fds:
                os.close(fd)
            ns_pid = _sandbox_pid(info_r) if info_r is not None else None
        out = BoundedOutput(limits.output_bytes)
        try:
            stopped = self._follow(proc, out, start + limits.timeout_s, guard)
        finally:
            self._stop(proc, ns_pid)
        duration = time.monotonic() - start
        guard.settle()
        timed_out = stopped == "timeout"
        limit_hit = stopped if stopped not in (None, "timeout") else None
        code = None if stopped is not None else proc.returncode
        if code is not None and code < 0:
            code = 128 - code  # killed by a signal: report it the way a shell would (137 = KILL)
        text = out.text()
        if limit_hit == "disk":
            text += (
                f"\n[debugtrace sandbox: stopped: the worktree grew by more than "
                f"{self.disk_bytes} bytes (DEBUGTRACE_SANDBOX_DISK_BYTES)]\n"
            )
        files, omitted = _fetch(handle.worktree, fetch, self.fetch_bytes)
        text += omitted_notes(omitted)
        return RunResult(
            exit_code=code,
            output=text,
            duration_s=duration,
            timed_out=timed_out,
            output_bytes=out.total,
            files=files,
            files_omitted=omitted,
            limit_hit=limit_hit,
        )

    def _follow(
        self, proc: subprocess.Popen[bytes], out: BoundedOutput, deadline: float, guard: _DiskGuard
    ) -> str | None:
        """Read the output until it ends, the deadline passes or a limit is hit; never blocks
        past the deadline, whoever holds the pipe. Returns why it stopped early, or None."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        exited_at: float | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return "timeout"
                if guard.exceeded(now):
                    return "disk"
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > _PIPE_GRACE_S:
                    return None  # something escaped the supervisor and holds the pipe
                if sel.select(min(deadline - now, _POLL_S)):
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        break
                    out.feed(chunk)
        # End of output: every process is gone but the supervisor may still be exiting.
        try:
            proc.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            return "timeout"
        return None

    def _stop(self, proc: subprocess.Popen[bytes], ns_pid: int | None) -> None:
        """End the run whatever state it is in, and reap it; with bwrap, also wait until its PID
        namespace is gone (its init, ``ns_pid``, ends only after every process in it)."""
        if proc.poll() is None and not self.bwrap:
            # the supervisor kills everything it started, then exits
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_STOP_GRACE_S)
        # bwrap: killing it kills its PID namespace (--die-with-parent); either way, what is left
        # of the process group goes too.
        _kill_group(proc.pid)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if ns_pid is not None:
            deadline = time.monotonic() + _STOP_GRACE_S
            while _alive(ns_pid) and time.monotonic() < deadline:
                time.sleep(0.005)

    def close(self, handle: SandboxHandle) -> None:
        """Nothing outlives a run (each run's supervisor kills what the command started)."""


def _sandbox_pid(info_r: int) -> int | None:
    """The host pid of the sandbox's first process, from bwrap's ``--info-fd`` (closes it)."""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(info_r, selectors.EVENT_READ)
            data = b""
            deadline = time.monotonic() + _STOP_GRACE_S
            while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
                chunk = os.read(info_r, 4096)
                if not chunk:
                    break
                data += chunk
        pid = json.loads(data or b"{}").get("child-pid")
        return pid if isinstance(pid, int) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(info_r)


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] != b"Z"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _chown_tree(root: Path, uid: int) -> None:
    """Hand the worktree to ``uid``, except ``.git``: test code must not rewrite the config or
    hooks of a repository that git later runs on (on the host, as us)."""
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in dirnames + filenames:
            if Path(dirpath) == root and name == ".git":
                continue
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _fetch(
    worktree: Path, names: Sequence[str], limit: int
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Read ``names`` (relative to the worktree) back, each at most ``limit`` bytes.

    Returns (files, omitted): a file larger than ``limit``, or not a regular file, is left out
    with the reason; a file that does not exist, or resolves outside the worktree (a symlink
    the command planted to a host file), is not read at all.
    """
    files: dict[str, bytes] = {}
    omitted: dict[str, str] = {}
    for name in names:
        path = (worktree / name).resolve()
        if not path.is_relative_to(worktree) or not path.exists():
            continue
        try:
            # no symlink at the last step, no blocking on a FIFO
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            omitted[name] = f"cannot open it: {exc.strerror}"
            continue
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                omitted[name] = "not a regular file"
                continue
            if st.st_size > limit:
                omitted[name] = fetch_note(st.st_size, limit)
                continue
            data = f.read(limit + 1)
        if len(data) > limit:  # grew after the stat
            omitted[name] = fetch_note(len(data), limit)
            continue
        files[name] = data
    return files, omitted
