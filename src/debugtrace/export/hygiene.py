"""What a training row must not carry from the machine a trace was recorded on.

A model trained on rows learns whatever they hold, so they keep the debugging and drop the host:

- **paths**: the repository's absolute root becomes relative (``/home/ana/calc/src/x.py`` →
  ``src/x.py``, the root itself ``.``), other home directories ``~`` (``/home/ana``,
  ``/Users/ana``, ``/root``), and an interpreter or tool run by absolute path its bare name
  (``/home/ana/calc/.venv/bin/python3.11 -m pytest`` → ``python -m pytest``);
- **diffs**: git's extended header lines (``diff --git``, ``index 7b48190..e598870 100755``,
  modes, similarity) go, the unified diff stays (``---``/``+++``, hunks; a rename keeps its
  ``rename from``/``rename to`` lines, the only place it is said);
- **debugtrace's own flags** on recorded commands (``pytest --debugtrace --debugtrace-note '…'``
  → ``pytest``): they are how the trace was recorded, not how the bug was debugged.

The repository's root is the trace's ``repo_url`` when that is a local path, else the longest
directory every command ran in or under (the shortest ``cwd`` when commands ran at the root: the
CLI and shell integration record it for each command; SWE-bench-style agents run in ``/testbed``).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from debugtrace.model import CommandEvent, Trace
from debugtrace.textutil import strip_debugtrace_flags

__all__ = ["Scrub", "strip_git_headers"]

# git's extended header lines: what `git apply` reads, not what a unified diff says
_GIT_HEADER = re.compile(
    r"^(?:diff --git |index [0-9a-f]+\.\.[0-9a-f]+|(?:old|new|deleted file|new file) mode |"
    r"(?:dis)?similarity index |copy (?:from|to) )"
)
# /any/absolute/dir/bin/NAME standing alone: an interpreter or tool run by its path
_BIN = re.compile(r"(?<![\w./~-])/(?:[\w.+@-]+/)*bin/([\w.+-]+)(?![\w/.-])")
_PYTHON = re.compile(r"python[0-9.]*$")
_HOME = re.compile(r"(?<![\w./-])(?:/home/[\w.-]+|/Users/[\w. -]+?(?=/|\b)|/root)(?=/|\b)")


def strip_git_headers(diff: str) -> str:
    """``diff`` without git's extended header lines (see the module); nothing else changes."""
    if "diff --git" not in diff and "index " not in diff and " mode " not in diff:
        return diff
    lines = diff.splitlines(keepends=True)
    kept: list[str] = []
    in_hunk = False
    for line in lines:
        if line.startswith("@@"):
            in_hunk = True
        elif line.startswith("diff --git "):
            in_hunk = False
        if not in_hunk and _GIT_HEADER.match(line):
            continue
        kept.append(line)
    return "".join(kept)


class Scrub:
    """The host details of one trace, and how to take them out of its text (see the module)."""

    def __init__(self, trace: Trace) -> None:
        self.root = _root(trace)
        pattern = [re.escape(self.root)] if self.root else []
        self._root = re.compile(rf"(?<![\w.]){pattern[0]}(/|(?![\w.-]))") if pattern else None

    def text(self, text: str) -> str:
        """Reasoning, output or a command line with the repository's paths relative, home as
        ``~`` and interpreters by name."""
        if not text or "/" not in text:
            return text
        text = _BIN.sub(_bare_tool, text)
        if self._root is not None:
            text = self._root.sub(lambda m: "" if m.group(1) else ".", text)
        return _HOME.sub("~", text)

    def command(self, command: str) -> str:
        """A recorded command line as it would be typed in the repository (see :meth:`text`),
        without debugtrace's own flags."""
        return self.text(strip_debugtrace_flags(command))

    def cwd(self, cwd: str | None) -> str | None:
        """The directory relative to the repository; None for the root itself (the default)."""
        if not cwd:
            return None
        if self.root and (cwd == self.root or cwd.rstrip("/") == self.root):
            return None
        out = self.text(cwd)
        return None if out in (".", "") else out

    @staticmethod
    def home(text: str) -> str:
        """``text`` with home directories as ``~`` (a row's metadata keeps the repository's
        path, without the user's name)."""
        return _HOME.sub("~", text)

    def repository(self, repo_url: str) -> str:
        """How the user message names the repository: a URL as is, a local path by its name."""
        local = _local_path(repo_url)
        if local is None:
            return repo_url
        return os.path.basename(local.rstrip("/")) or repo_url


def _bare_tool(m: re.Match[str]) -> str:
    name = m.group(1)
    return "python" if _PYTHON.match(name) else name


def _local_path(repo_url: str) -> str | None:
    if repo_url.startswith("/"):
        return repo_url
    if repo_url.startswith("file://"):
        return unquote(urlsplit(repo_url).path) or None
    return None


def _root(trace: Trace) -> str | None:
    local = _local_path(trace.repo_url)
    if local is not None and len(local.rstrip("/")) > 1:
        return local.rstrip("/")
    dirs = [
        ev.details.cwd.rstrip("/")
        for ev in trace.events
        if isinstance(ev, CommandEvent) and ev.details.cwd and ev.details.cwd.startswith("/")
    ]
    if not dirs:
        return None
    common = os.path.commonpath(dirs)
    # "/" or a home directory is no repository: relativizing there would eat every path
    if common in ("/", "") or _HOME.fullmatch(common):
        return None
    return common
