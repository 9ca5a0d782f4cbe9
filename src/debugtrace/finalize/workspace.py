"""The workspace stage: a cache of bare mirrors, and throwaway checkouts of a trace's base commit.

Mirrors live in ``<data_dir>/mirrors``, one per repository URL, created with ``git clone --mirror``
and refreshed with ``git fetch`` on the next trace of the same repository. One file lock per
repository serialises clone/fetch/checkout, so parallel finalizes never corrupt a mirror. A checkout
is a ``git clone --shared`` of the mirror (objects borrowed, nothing copied), removed afterwards.

Everything here treats the repository and its URL as hostile:

- a remote host must resolve to public addresses only (no loopback, private, link-local...: the
  server is not a port scanner for its own network) unless ``allow_private`` says otherwise; git
  connects to the address that was checked (``http.curloptResolve``, ssh ``HostName``) and never
  follows a redirect;
- without ``trusted`` (the user's own traces on the command line), git gets neither the user's
  global config (credential helpers, ``insteadOf``) nor their ssh keys and agent;
- every git call on a checkout runs with hooks and fsmonitor off and no system/global config;
- a commit's tree is measured before it is checked out (``max_checkout_bytes``), and checkouts left
  by a crashed run are removed by the next one (a live run holds a lock on its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from debugtrace.errors import RepoError

__all__ = [
    "SAFE_GIT_CONFIG",
    "RemoteHost",
    "RepoError",
    "Workspace",
    "check_remote_host",
    "check_repo_url",
    "checkout_git",
    "remove_stale_checkouts",
]

SAFE_GIT_CONFIG = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "gc.auto=0",
    "-c",
    "protocol.ext.allow=never",
)
"""Options of every git call made on a mirror or a checkout: no hook, no fsmonitor command (git
runs both through the shell), no background gc."""

MAX_CHECKOUT_FILES = 250_000
"""Most files a checkout may have (inodes are a disk resource too)."""

STALE_CHECKOUT_S = 3 * 3600
"""Age after which an unlocked checkout directory is a crashed run's leftover."""

# Attributes of every checkout, above the repository's own .gitattributes: no ident expansion or
# re-encoding inflates files beyond the size measured on the commit's tree, no filter runs.
_CHECKOUT_ATTRIBUTES = "* -ident -filter -working-tree-encoding\n"
# Environment variables through which git or ssh would use the server's own credentials.
_CREDENTIAL_VARS = ("SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY")
_NO_KEYS_SSH = (
    "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o BatchMode=yes "
    "-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no"
)


_REMOTE = re.compile(r"^(https://|ssh://|git@[\w.-]+:)")


def check_repo_url(url: str, allow_local: bool) -> str:
    """Return the URL to clone, or raise :class:`RepoError` saying why it is refused.

    Remote repositories must be https or ssh. Local paths and ``file://`` URLs only with
    ``allow_local`` (``DEBUGTRACE_ALLOW_LOCAL_REPOS=1``; a server never sets it). Anything that git
    could read as an option or a remote helper (``ext::``, ``-u...``) is refused.
    """
    url = url.strip()
    if not url or url.startswith("-") or "::" in url.split("/", 1)[0]:
        raise RepoError(f"refused repo_url {url!r}: not a repository URL")
    if _REMOTE.match(url):
        try:
            host = urlsplit(url).hostname if url.startswith("https://") else "-"
        except ValueError as exc:  # "[" or "]" outside an IPv6 host (a redacted password too)
            raise RepoError(f"refused repo_url {url!r}: not a valid URL ({exc})") from None
        if not host:
            raise RepoError(f"refused repo_url {url!r}: no host")
        return url
    local = url[len("file://") :] if url.startswith("file://") else url
    if "://" in local:
        raise RepoError(
            f"refused repo_url {url!r}: only https://, ssh:// and git@host: URLs are allowed"
        )
    if not allow_local:
        raise RepoError(
            f"refused repo_url {url!r}: local repositories are allowed only with "
            "DEBUGTRACE_ALLOW_LOCAL_REPOS=1"
        )
    path = Path(local).expanduser().resolve()
    if not path.exists():
        raise RepoError(f"local repository {path} does not exist")
    return str(path)


def _base_env() -> dict[str, str]:
    # No inherited GIT_* variable (GIT_DIR, GIT_SSH_COMMAND, GIT_CONFIG_PARAMETERS...) reaches git.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    return env


def _git_env(allow_local: bool, trusted: bool | None = None) -> dict[str, str]:
    """The environment of clone and fetch. ``trusted`` (default: ``allow_local``, the user's own
    traces) keeps the user's global config and ssh keys; otherwise git gets neither."""
    env = _base_env()
    env["GIT_ALLOW_PROTOCOL"] = "https:ssh" + (":file" if allow_local else "")
    if not (allow_local if trusted is None else trusted):
        for key in _CREDENTIAL_VARS:
            env.pop(key, None)
        env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_SSH_COMMAND=_NO_KEYS_SSH)
    return env


def checkout_env() -> dict[str, str]:
    """The environment of every git call on a checkout: no system or global config, no
    credentials, only the ``file`` protocol (the mirror)."""
    env = _base_env()
    for key in _CREDENTIAL_VARS:
        env.pop(key, None)
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_ALLOW_PROTOCOL="file")
    return env


def checkout_git(worktree: Path, *args: str) -> list[str]:
    """The argv of ``git <args>`` on the checkout ``worktree``: its own ``.git`` named explicitly
    (no search up the directory tree) and :data:`SAFE_GIT_CONFIG`. Run it with
    :func:`checkout_env`."""
    return [
        "git",
        *SAFE_GIT_CONFIG,
        f"--git-dir={worktree / '.git'}",
        f"--work-tree={worktree}",
        *args,
    ]


@dataclass(frozen=True)
class RemoteHost:
    """A remote repository's host, its port and the addresses it was checked at."""

    host: str
    port: int
    addresses: tuple[str, ...]


def _host_port(url: str) -> tuple[str, int, str] | None:
    """(host, port, scheme) of an https/ssh URL or scp-like ``user@host:path``; None otherwise."""
    if url.startswith(("https://", "ssh://")):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise RepoError(f"refused repo_url {url!r}: bad port") from None
        if not parts.hostname:
            raise RepoError(f"refused repo_url {url!r}: no host")
        scheme = parts.scheme
        return parts.hostname, port or (443 if scheme == "https" else 22), scheme
    m = re.match(r"^[\w.-]+@([\w.-]+):", url)
    return (m.group(1), 22, "ssh") if m else None


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_remote_host(url: str, allow_private: bool) -> RemoteHost | None:
    """Resolve a remote URL's host and refuse it (:class:`RepoError`) when any of its addresses
    is not public (loopback, private, link-local, CGNAT, reserved, multicast), unless
    ``allow_private``. Returns the host and the addresses checked (None for local paths, or when
    private addresses are allowed: nothing to pin)."""
    found = _host_port(url.strip())
    if found is None or allow_private:
        return None
    host, port, _ = found
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RepoError(f"cannot resolve the host of {url!r}: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RepoError(f"cannot resolve the host of {url!r}")
    bad = [a for a in addresses if not _is_public(a)]
    if bad:
        raise RepoError(
            f"refused repo_url {url!r}: {host} resolves to a non-public address ({bad[0]}); "
            "allowed only with DEBUGTRACE_ALLOW_PRIVATE_REPOS=1"
        )
    return RemoteHost(host, port, addresses)


def _pin_options(url: str, remote: RemoteHost | None, env: dict[str, str]) -> list[str]:
    """git options (and, for ssh, ``env`` changes) making git connect to the checked addresses
    only: a DNS answer that changes between the check and the connection changes nothing."""
    if remote is None:
        return []
    opts = ["-c", "http.followRedirects=false"]
    if url.startswith("https://"):
        addrs = ",".join(f"[{a}]" if ":" in a else a for a in remote.addresses)
        opts += ["-c", f"http.curloptResolve={remote.host}:{remote.port}:{addrs}"]
    elif "GIT_SSH_COMMAND" in env:
        env["GIT_SSH_COMMAND"] += (
            f" -o HostName={shlex.quote(remote.addresses[0])}"
            f" -o HostKeyAlias={shlex.quote(remote.host)} -o CheckHostIP=no"
        )
    return opts


def remove_stale_checkouts(checkouts: Path, older_than_s: float = STALE_CHECKOUT_S) -> int:
    """Remove the checkout directories under ``checkouts`` that crashed runs left: older than
    ``older_than_s`` and not locked (a live run holds ``<dir>.lock``). Returns how many."""
    from filelock import FileLock, Timeout

    if not checkouts.is_dir():
        return 0
    removed = 0
    now = time.time()
    for entry in checkouts.iterdir():
        if entry.suffix == ".lock" and not entry.with_suffix("").exists():
            # A lock whose directory is gone (a crash between the two removals).
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime >= older_than_s:
                    entry.unlink()
            continue
        if entry.suffix == ".lock" or entry.is_symlink() or not entry.is_dir():
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime < older_than_s:
                continue
        lock_path = entry.with_name(entry.name + ".lock")
        lock = FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue  # a live run
        try:
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
        finally:
            lock.release()
            with contextlib.suppress(OSError):
                lock_path.unlink()
    return removed


class Workspace:
    """Mirrors and checkouts under ``root`` (normally ``<data_dir>``)."""

    def __init__(
        self,
        root: Path,
        *,
        allow_local: bool = False,
        timeout_s: float = 300,
        max_bytes: int = 2 * 1024**3,
        max_checkout_bytes: int = 1024**3,
        allow_private: bool | None = None,
    ) -> None:
        self.mirrors = root / "mirrors"
        self.checkouts = root / "checkouts"
        self.allow_local = allow_local
        self.allow_private = allow_local if allow_private is None else allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_checkout_bytes = max_checkout_bytes
        self.env = _git_env(allow_local)

    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        try:
            proc = subprocess.run(
                ["git", *SAFE_GIT_CONFIG, *args],
                cwd=cwd,
                env=env or self.env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout or self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RepoError(
                f"git {args[0]} took longer than {timeout or self.timeout_s:.0f}s"
            ) from None
        if proc.returncode != 0:
            raise RepoError(f"git {args[0]} failed: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def mirror_path(self, url: str) -> Path:
        """Where the mirror of ``url`` lives (a readable name plus a hash of the URL)."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1])[:40]
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return self.mirrors / f"{name}-{digest}.git"

    @contextmanager
    def locked(self, url: str) -> Iterator[Path]:
        """Hold the repository's lock; yields its mirror path."""
        from filelock import FileLock

        path = self.mirror_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=self.timeout_s * 2):
            yield path

    def update_mirror(self, url: str) -> tuple[Path, str]:
        """Clone ``url`` into the cache, or fetch when cached; returns (mirror, what was done)."""
        url = check_repo_url(url, self.allow_local)
        # Checked on every clone and fetch: a host's addresses can change between two traces.
        remote = check_remote_host(url, self.allow_private)
        env = dict(self.env)
        pin = _pin_options(url, remote, env)
        with self.locked(url) as mirror:
            if (mirror / "HEAD").exists():
                self._git(*pin, "fetch", "--prune", "--quiet", "origin", cwd=mirror, env=env)
                action = "fetched"
            else:
                tmp = mirror.with_suffix(".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    self._git(*pin, "clone", "--mirror", "--quiet", "--", url, str(tmp), env=env)
                    tmp.rename(mirror)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                action = "cloned"
            size = _tree_size(mirror)
            if size > self.max_bytes:
                shutil.rmtree(mirror, ignore_errors=True)
                raise RepoError(
                    f"repository is {size // 2**20} MiB, over the limit of "
                    f"{self.max_bytes // 2**20} MiB (DEBUGTRACE_MAX_REPO_BYTES)"
                )
        return mirror, action

    def resolve(self, mirror: Path, base: str | None, as_of: datetime | None) -> str:
        """The commit sha to check out: ``base`` if given, else the default branch's head as it
        was at ``as_of`` (the trace's submission time), else its current head."""
        if base:
            try:
                return self._git(
                    "rev-parse", "--verify", "--end-of-options", f"{base}^{{commit}}", cwd=mirror
                ).strip()
            except RepoError as exc:
                raise RepoError(f"unknown base commit {base!r}: {exc}") from None
        if as_of is not None:
            sha = self._git("rev-list", "-1", f"--before={as_of.isoformat()}", "HEAD", cwd=mirror)
            if sha.strip():
                return sha.strip()
        return self._git("rev-parse", "--verify", "HEAD^{commit}", cwd=mirror).strip()

    def check_tree_size(self, mirror: Path, sha: str) -> tuple[int, int]:
        """The bytes and files of ``sha``'s tree, read from the mirror before anything is written;
        raises :class:`RepoError` past ``max_checkout_bytes`` or :data:`MAX_CHECKOUT_FILES` (a
        small, well-compressed repository can expand to gigabytes)."""
        cmd = ["git", *SAFE_GIT_CONFIG, "ls-tree", "-r", "-l", "-z", "--full-tree", sha]
        total = files = 0
        over = ""
        pending = b""
        deadline = time.monotonic() + self.timeout_s
        with subprocess.Popen(
            cmd, cwd=mirror, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as proc:
            assert proc.stdout is not None
            try:
                while chunk := proc.stdout.read(1 << 16):
                    *entries, pending = (pending + chunk).split(b"\0")
                    for entry in entries:
                        # "<mode> <type> <object> <size>\t<path>"; size is "-" for submodules.
                        size = entry.split(b"\t", 1)[0].rsplit(b" ", 1)[-1].strip()
                        files += 1
                        total += int(size) if size.isdigit() else 0
                    if total > self.max_checkout_bytes:
                        over = (
                            f"over {total // 2**20} MiB, more than the limit of "
                            f"{self.max_checkout_bytes // 2**20} MiB "
                            "(DEBUGTRACE_MAX_CHECKOUT_BYTES)"
                        )
                    elif files > MAX_CHECKOUT_FILES:
                        over = f"over {files} files, more than the limit of {MAX_CHECKOUT_FILES}"
                    elif time.monotonic() > deadline:
                        over = f"too large to list in {self.timeout_s:.0f}s"
                    if over:
                        break
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        if over:
            raise RepoError(f"refused to check out {sha[:12]}: its files are {over}")
        if proc.returncode != 0:
            raise RepoError(f"git ls-tree failed on {sha[:12]}")
        return total, files

    def checkout(self, url: str, mirror: Path, sha: str, dest: Path) -> Path:
        """A throwaway checkout of ``sha`` at ``dest`` sharing the mirror's objects (its size
        checked first, see :meth:`check_tree_size`)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        env = checkout_env()
        with self.locked(url):
            self.check_tree_size(mirror, sha)
            clone = ["clone", "--shared", "--no-checkout", "--quiet", "--", str(mirror), str(dest)]
            self._git(*clone, env=env)
        info = dest / ".git" / "info"
        info.mkdir(exist_ok=True)
        (info / "attributes").write_text(_CHECKOUT_ATTRIBUTES)
        git = checkout_git(dest)[1:]  # _git adds "git" and SAFE_GIT_CONFIG again: harmless
        detach = ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha]
        self._git(*git, *detach, cwd=dest, env=env)
        self._git(*git, "config", "user.email", "debugtrace@localhost", cwd=dest, env=env)
        self._git(*git, "config", "user.name", "debugtrace", cwd=dest, env=env)
        return dest


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file can vanish while git works
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
