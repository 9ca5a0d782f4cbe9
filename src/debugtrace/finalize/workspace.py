"""The workspace stage: a cache of bare mirrors, and throwaway checkouts of a trace's base commit.

Mirrors live in ``<data_dir>/mirrors``, one per repository URL, created with ``git clone --mirror``
and refreshed with ``git fetch`` on the next trace of the same repository. One file lock per
repository serialises clone/fetch/checkout, so parallel finalizes never corrupt a mirror. A checkout
is a ``git clone --shared`` of the mirror (objects borrowed, nothing copied), removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from debugtrace.errors import RepoError

__all__ = ["RepoError", "Workspace", "check_repo_url"]


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
        if url.startswith("https://") and not urlsplit(url).hostname:
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


def _git_env(allow_local: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",  # never wait for a password on a terminal
        GIT_ALLOW_PROTOCOL="https:ssh" + (":file" if allow_local else ""),
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


class Workspace:
    """Mirrors and checkouts under ``root`` (normally ``<data_dir>``)."""

    def __init__(
        self,
        root: Path,
        *,
        allow_local: bool = False,
        timeout_s: float = 300,
        max_bytes: int = 2 * 1024**3,
    ) -> None:
        self.mirrors = root / "mirrors"
        self.checkouts = root / "checkouts"
        self.allow_local = allow_local
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.env = _git_env(allow_local)

    def _git(self, *args: str, cwd: Path | None = None, timeout: float | None = None) -> str:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self.env,
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
        with self.locked(url) as mirror:
            if (mirror / "HEAD").exists():
                self._git("fetch", "--prune", "--quiet", "origin", cwd=mirror)
                action = "fetched"
            else:
                tmp = mirror.with_suffix(".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    self._git("clone", "--mirror", "--quiet", "--", url, str(tmp))
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

    def checkout(self, url: str, mirror: Path, sha: str, dest: Path) -> Path:
        """A throwaway checkout of ``sha`` at ``dest`` sharing the mirror's objects."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.locked(url):
            self._git("clone", "--shared", "--no-checkout", "--quiet", "--", str(mirror), str(dest))
        self._git(
            "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha, cwd=dest
        )
        self._git("config", "user.email", "debugtrace@localhost", cwd=dest)
        self._git("config", "user.name", "debugtrace", cwd=dest)
        return dest


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file can vanish while git works
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
