"""Diffs of a working tree taken without touching the user's index, stash or HEAD.

A snapshot is a git tree object written through a temporary index (``GIT_INDEX_FILE``): every
capture diffs the working tree (tracked and untracked files, ``.gitignore`` respected) against the
previous snapshot, so consecutive captures give consecutive, applicable edits.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debugtrace.errors import GitError

__all__ = [
    "DiffSection",
    "FileDiff",
    "GitError",
    "Hunk",
    "WorktreeSnapshots",
    "head_commit",
    "header_name",
    "parse_sections",
    "unquote_c",
]

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
    minus: str | None = None
    plus: str | None = None
    for line in chunk:
        if line.startswith(("+++ ", "--- ")):
            try:
                name = header_name(line[4:].rstrip("\n"))
            except ValueError:
                name = line[4:].rstrip("\n")
            if line.startswith("+"):
                plus = name
            else:
                minus = name
    for candidate in (plus, minus):
        if candidate and candidate != "/dev/null":
            return candidate[2:] if candidate[:2] in ("a/", "b/") else candidate
    # Binary or mode-only change: the header names the file as "diff --git a/X b/X".
    header = chunk[0].rstrip("\n")
    if '"' in header and header.startswith("diff --git "):
        with contextlib.suppress(ValueError):
            names = _git_header_names(header[len("diff --git ") :])
            if len(names) == 2:
                return names[1][2:] if names[1][:2] == "b/" else names[1]
    return header.split(" b/", 1)[-1] if " b/" in header else header


# -- reading diffs: file names as git and GNU patch read them, and the structure of each file ----

_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_c(text: str) -> tuple[str, str]:
    """Read the C-quoted string at the start of ``text`` the way git and GNU patch do; returns
    (the name, what follows the closing quote). Octal escapes are bytes, decoded as UTF-8
    (``surrogateescape`` keeps invalid bytes). Raises ``ValueError`` when it is malformed."""
    if not text.startswith('"'):
        raise ValueError(f"not a quoted name: {text[:80]!r}")
    out = bytearray()
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return bytes(out).decode("utf-8", "surrogateescape"), text[i + 1 :]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _C_ESCAPES:
            out.append(_C_ESCAPES[esc])
            i += 2
        elif re.fullmatch(r"[0-3][0-7][0-7]", text[i + 1 : i + 4]):
            out.append(int(text[i + 1 : i + 4], 8))
            i += 4
        else:
            raise ValueError(f"bad escape in quoted name: {text[:80]!r}")
    raise ValueError(f"unterminated quoted name: {text[:80]!r}")


def header_name(value: str) -> str:
    """The file name of a ``---``/``+++`` header (the text after the 4-character prefix):
    unquoted when C-quoted, else up to the first tab (GNU diff puts a timestamp after it)."""
    if value.startswith('"'):
        return unquote_c(value)[0]
    return value.split("\t", 1)[0]


def _named(value: str) -> str:
    # ``rename from X``, ``Index: X``: the rest of the line, unquoted when quoted.
    return unquote_c(value)[0] if value.startswith('"') else value


def _git_header_names(rest: str) -> list[str]:
    """Every name ``diff --git <rest>`` can stand for. Unquoted names are split at a space, and
    which space is ambiguous, so every split is returned (a check on all of them is safe)."""
    if rest.startswith('"'):
        first, tail = unquote_c(rest)
        tail = tail.lstrip(" ")
        return [first, _named(tail)]
    quoted = rest.find(' "')
    if quoted >= 0:
        return [rest[:quoted], unquote_c(rest[quoted + 1 :])[0]]
    names = [rest]
    for i, ch in enumerate(rest):
        if ch == " ":
            names += [rest[:i], rest[i + 1 :]]
    return names


@dataclass
class Hunk:
    """One ``@@`` hunk: its header's numbers and its body lines (with their ``+- \\`` marks)."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: list[str]


@dataclass
class DiffSection:
    """What a diff says about one file: every name it gives (unquoted), the old and new names of
    its ``---``/``+++`` headers (None for ``/dev/null`` or absent), its extended git header lines
    (``new file mode``, ``rename from``...) and its hunks. ``malformed`` says a hunk's body does
    not match its header's counts."""

    names: list[str]
    old: str | None = None
    new: str | None = None
    extended: list[str] | None = None
    hunks: list[Hunk] | None = None
    malformed: bool = False


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NAMED_HEADERS = ("rename from ", "rename to ", "copy from ", "copy to ", "Index: ")
_EXTENDED = (
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "similarity index ",
    "dissimilarity index ",
    "index ",
    "GIT binary patch",
    "Binary files ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
)


def parse_sections(diff: str) -> list[DiffSection]:
    """Split a unified (git or GNU) diff into its files, reading names as git and GNU patch do.

    Hunk bodies are consumed by their header's line counts, as both tools do, so a removed line
    that reads ``--- x`` is not taken for a header. Raises ``ValueError`` on a malformed quoted
    name."""
    lines = diff.split("\n")
    sections: list[DiffSection] = []
    current: DiffSection | None = None

    def start() -> DiffSection:
        section = DiffSection(names=[], extended=[], hunks=[])
        sections.append(section)
        return section

    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("diff --git "):
            current = start()
            current.names += _git_header_names(line[len("diff --git ") :])
        elif line.startswith("--- "):
            if current is None or current.hunks or current.old is not None or current.new:
                current = start()
            name = header_name(line[4:])
            current.names.append(name)
            current.old = None if name == "/dev/null" else name
        elif line.startswith("+++ "):
            if current is None:
                current = start()
            name = header_name(line[4:])
            current.names.append(name)
            current.new = None if name == "/dev/null" else name
        elif line.startswith(_EXTENDED) or line.startswith("Index: "):
            if current is None or current.hunks:
                current = start()
            assert current.extended is not None
            current.extended.append(line)
            for prefix in _NAMED_HEADERS:
                if line.startswith(prefix):
                    current.names.append(_named(line[len(prefix) :]))
        elif (m := _HUNK_HEADER.match(line)) is not None:
            if current is None:
                current = start()
            hunk = Hunk(
                int(m.group(1)),
                int(m.group(2) or 1),
                int(m.group(3)),
                int(m.group(4) or 1),
                [],
            )
            assert current.hunks is not None
            current.hunks.append(hunk)
            old_left, new_left = hunk.old_count, hunk.new_count
            while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i][:1] == "\\"):
                body = lines[i]
                kind = body[:1]
                if kind in (" ", ""):
                    old_left, new_left = old_left - 1, new_left - 1
                elif kind == "-":
                    old_left -= 1
                elif kind == "+":
                    new_left -= 1
                elif kind != "\\":
                    break
                hunk.lines.append(body)
                i += 1
            if old_left != 0 or new_left != 0:
                current.malformed = True
    return sections
