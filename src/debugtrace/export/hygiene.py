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

__all__ = ["Scrub", "home", "strip_git_headers"]

# git's extended header lines: what `git apply` reads, not what a unified diff says
_GIT_HEADER = re.compile(
    r"^(?:diff --git |index [0-9a-f]+\.\.[0-9a-f]+|(?:old|new|deleted file|new file) mode |"
    r"(?:dis)?similarity index |copy (?:from|to) )"
)
# /any/absolute/dir/bin/NAME standing alone on a command line: an interpreter or tool run by its
# path. Never after a path character (a match could start at every "/" of a long path: quadratic
# time) nor after "#!" (a shebang is file content).
_BIN = re.compile(r"(?<![\w./~+@-])(?<!#!)/(?:[\w.+@-]+/)*bin/([\w.+-]+)(?![\w/.-])")
# a virtualenv's interpreter or tool inside the repository: .venv/bin/python -> python
_VENV_BIN = re.compile(
    r"(?<![\w./-])(?:\.?venv|env|\.tox/[\w.-]+)/bin/(?!activate)([\w.+-]+)(?![\w/.-])"
)
_PYTHON = re.compile(r"python[0-9.]*$")
# home directories (also under /var, /nfs, WSL's /mnt/c) and Windows profiles; pytest's tmp_path
_HOME = re.compile(
    r"(?<![\w./-])(?:/(?:var|nfs|mnt/[a-z]))?(?:/home/[\w.-]+|/Users/[\w.-]+|/root(?![\w.-]))"
    r"|(?<=file://)(?:/home/[\w.-]+|/Users/[\w.-]+)"
    r"|(?<![\w])[A-Za-z]:\\Users\\[\w.-]+"
)
_PYTEST_TMP = re.compile(r"(?<![\w.-])/tmp/pytest-of-[\w.-]+")


def home(text: str) -> str:
    """``text`` with home directories as ``~`` and pytest's per-user temporary folder without
    the user's name."""
    if "/" not in text and "\\" not in text:
        return text
    return _PYTEST_TMP.sub("/tmp/pytest-of-user", _HOME.sub("~", text))


def strip_git_headers(diff: str) -> str:
    """``diff`` without git's extended header lines (see the module); nothing else changes. A
    diff that is only headers (an empty new file, a mode change) keeps them but its ``index``
    lines: without them it would say nothing."""
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
    if not any(line.startswith(("@@", "rename ", "Binary files")) for line in kept):
        return "".join(line for line in lines if not line.startswith("index "))
    return "".join(kept)


class Scrub:
    """The host details of one trace, and how to take them out of its text (see the module)."""

    def __init__(self, trace: Trace) -> None:
        self.root = _root(trace)
        self._in_root: re.Pattern[str] | None = None
        self._at_root: re.Pattern[str] | None = None
        if self.root:
            root = re.escape(self.root)
            # the root before a path inside it goes (src/x.py); the root itself is "." (cd .),
            # never after a path character or "scheme://"
            self._in_root = re.compile(rf"(?<![\w./]){root}/(?=[\w.~@+-])")
            self._at_root = re.compile(rf"(?<![\w./]){root}/?(?![\w.-])")

    def text(self, text: str) -> str:
        """Reasoning, output or file content with the repository's paths relative and home
        directories as ``~`` (interpreters keep their paths: a shebang is content)."""
        if not text or ("/" not in text and "\\" not in text):
            return text
        return home(self._relative(text))

    def _relative(self, text: str) -> str:
        if self._in_root is None or self._at_root is None or not self.root or self.root not in text:
            return text
        return self._at_root.sub(".", self._in_root.sub("", text))

    def command(self, command: str) -> str:
        """A recorded command line as it would be typed in the repository: its paths relative,
        an interpreter or tool run by its path (outside the repository, or a virtualenv's) by
        its name, home as ``~``, debugtrace's own flags left out."""
        command = strip_debugtrace_flags(command)
        if "/" not in command and "\\" not in command:
            return command
        command = self._relative(command)
        command = _VENV_BIN.sub(_bare_tool, _BIN.sub(_bare_tool, command))
        return home(command)

    def path(self, file: str) -> str:
        """A file an edit names: relative to the repository when it is under it."""
        return self.text(file) if file.startswith("/") else file

    def cwd(self, cwd: str | None) -> str | None:
        """The directory relative to the repository; None for the root itself (the default)."""
        if not cwd:
            return None
        if self.root and cwd.rstrip("/") == self.root:
            return None
        out = self.text(cwd)
        return None if out in (".", "") else out

    def value(self, value: object) -> object:
        """A JSON value (the trace's metadata) with :meth:`text` applied to every string."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

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
