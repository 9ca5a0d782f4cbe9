"""Diffs of a working tree taken without touching the user's index, stash or HEAD.

A snapshot is a git tree object written through a temporary index (``GIT_INDEX_FILE``): every
capture diffs the working tree (tracked and untracked files, ``.gitignore`` respected) against the
previous snapshot, so consecutive captures give consecutive, applicable edits.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debugtrace.errors import GitError

__all__ = ["FileDiff", "GitError", "WorktreeSnapshots", "head_commit"]

# Byproducts of running Python and its tools, left out even where no .gitignore says so: they are
# never part of a fix, and bytecode would turn every test run into a binary "edit".
JUNK = (
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/*.py[cod]",
    ":(exclude,glob)**/.pytest_cache/**",
    ":(exclude,glob)**/.hypothesis/**",
    ":(exclude,glob)**/.mypy_cache/**",
    ":(exclude,glob)**/.ruff_cache/**",
    ":(exclude,glob)**/.coverage",
    ":(exclude,glob)**/.debugtrace-junit.xml",
)


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            errors="surrogateescape",
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed (it is needed to capture diffs)") from exc
    if proc.returncode != 0:
        raise GitError(
            f"git {args[0]} failed in {repo}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def head_commit(repo: Path) -> str:
    """The sha of ``HEAD`` in ``repo``; raises :class:`GitError` outside a repository."""
    return _git(repo, "rev-parse", "--verify", "HEAD^{commit}").strip()


@dataclass(frozen=True)
class FileDiff:
    """The change to one file between two snapshots."""

    file: str
    diff: str


class WorktreeSnapshots:
    """Successive diffs of a working tree, starting from ``base`` (a commit or tree)."""

    def __init__(self, repo: Path | str, base: str | None = None) -> None:
        self.repo = Path(_git(Path(repo), "rev-parse", "--show-toplevel").strip())
        self.tree = _git(self.repo, "rev-parse", f"{base or 'HEAD'}^{{tree}}").strip()

    def snapshot(self) -> str:
        """Write the working tree as a tree object (the user's index is not touched)."""
        with tempfile.TemporaryDirectory(prefix="debugtrace-index-") as tmp:
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(self.repo, "read-tree", self.tree, env=env)
            _git(self.repo, "add", "--all", "--", ".", *JUNK, env=env)
            return _git(self.repo, "write-tree", env=env).strip()

    def capture(self, upto: str | None = None) -> list[FileDiff]:
        """Diff the working tree (or the snapshot tree ``upto``, taken earlier) against the last
        snapshot, one entry per changed file, and move the snapshot forward. Returns an empty
        list when nothing changed."""
        new = upto or self.snapshot()
        if new == self.tree:
            return []
        text = _git(
            self.repo,
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--binary",
            "--no-renames",
            self.tree,
            new,
        )
        self.tree = new
        return split_diff(text)


def split_diff(text: str) -> list[FileDiff]:
    """Split a multi-file ``git diff`` into one :class:`FileDiff` per file."""
    chunks: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git ") or not chunks:
            chunks.append([])
        chunks[-1].append(line)
    out = []
    for chunk in chunks:
        body = "".join(chunk)
        out.append(FileDiff(_path_of(chunk), body))
    return out


def _path_of(chunk: list[str]) -> str:
    minus = plus = None
    for line in chunk:
        if line.startswith("+++ "):
            plus = line[4:].rstrip("\n")
        elif line.startswith("--- "):
            minus = line[4:].rstrip("\n")
    for name in (plus, minus):
        if name and name != "/dev/null":
            return name[2:] if name[:2] in ("a/", "b/") else name
    # Binary or mode-only change: the header names the file as "diff --git a/X b/X".
    header = chunk[0].rstrip("\n")
    return header.split(" b/", 1)[-1] if " b/" in header else header
