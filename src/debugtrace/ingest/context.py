"""Diffs stay applicable after redaction: a context or removed line whose secret was redacted
is matched against the file being patched (the placeholder as a wildcard) and put back, so the
hunk applies; a secret on an added line stays redacted in the applied result.

The matching uses an index of the file's lines, read once per file, and a work budget linear in
the sizes of the diff and the file (hostile diffs cannot make it quadratic).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable

__all__ = ["restore_context"]

_PLACEHOLDER_RE = re.compile(r"\[REDACTED:[a-z0-9-]+\]")


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def restore_context(diff: str, read_source: Callable[[str], list[str] | None]) -> str:
    """Put back, from the file being patched, the context and removed lines of ``diff`` whose
    secrets were redacted, so that the diff applies; returns the diff (unchanged when no such line
    matches). ``read_source(path)`` returns the file's lines (without newlines) or None; it is
    called once per file.

    A line with placeholders matches a source line when everything outside the placeholders is
    identical (each placeholder standing for one or more characters); the hunk's old side is
    matched as a block at its stated position, else anywhere in the file (the first match).
    Matching goes through an index of each file's lines and has a work budget linear in the sizes
    of the diff and the files: a hostile diff cannot make it quadratic (past the budget, the
    remaining hunks are left as they are and will not apply).
    """
    if "[REDACTED:" not in diff:
        return diff
    from debugtrace.gitdiff import header_name

    lines = diff.split("\n")
    sources: dict[str, _Source | None] = {}
    work = _Work(16 * len(lines) + 10_000)
    path: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- "):
            try:
                name = header_name(line[4:])
            except ValueError:
                name = "/dev/null"
            path = None if name == "/dev/null" else (name[2:] if name[:2] == "a/" else name)
        m = _HUNK.match(line)
        if m is None:
            i += 1
            continue
        # The hunk's body is as long as its header says (a next file's "--- " header is not
        # a removed line).
        old_left = int(m.group(2) or 1)
        new_left = int(m.group(3) or 1)
        body = []
        j = i + 1
        while j < len(lines) and (old_left > 0 or new_left > 0):
            kind = lines[j][:1]
            if kind in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
                body.append(j)
            elif kind == "-":
                old_left -= 1
                body.append(j)
            elif kind == "+":
                new_left -= 1
            elif kind != "\\":
                break
            j += 1
        if path is not None and work.left > 0 and any("[REDACTED:" in lines[k] for k in body):
            if path not in sources:
                found = read_source(path)
                sources[path] = None if found is None else _Source(found)
                work.left += 16 * len(found or ())
            source = sources[path]
            if source is not None:
                at = _locate([lines[k][1:] for k in body], source, int(m.group(1)) - 1, work)
                if at is not None:
                    for n, k in enumerate(body):
                        lines[k] = (lines[k][:1] or " ") + source.lines[at + n]
        i = j
    return "\n".join(lines)


class _Work:
    """Line comparisons left for one :func:`restore_context` call."""

    def __init__(self, left: int) -> None:
        self.left = left


class _Source:
    """A file's lines, with indexes built on first use: exact line -> positions, and the lines
    sorted (and sorted reversed) to find those with a given prefix (suffix) by bisection."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._exact: dict[str, list[int]] | None = None
        self._sorted: list[tuple[str, int]] | None = None
        self._reversed: list[tuple[str, int]] | None = None

    def exact(self, line: str) -> list[int]:
        if self._exact is None:
            self._exact = {}
            for n, text in enumerate(self.lines):
                self._exact.setdefault(text, []).append(n)
        return self._exact.get(line, [])

    def affixed(self, affix: str, suffix: bool) -> tuple[list[tuple[str, int]], int, int]:
        """The sorted (reversed for a suffix) index and the range of its entries starting
        with ``affix``."""
        if suffix:
            if self._reversed is None:
                self._reversed = sorted((t[::-1], n) for n, t in enumerate(self.lines))
            index, key = self._reversed, affix[::-1]
        else:
            if self._sorted is None:
                self._sorted = sorted((t, n) for n, t in enumerate(self.lines))
            index, key = self._sorted, affix
        lo = bisect_left(index, (key, -1))
        hi = bisect_left(index, (key + "\U0010ffff", -1))
        return index, lo, hi


def _locate(old: list[str], source: _Source, hint: int, work: _Work) -> int | None:
    """Where the block ``old`` (lines with placeholders as wildcards) starts in ``source``: at
    ``hint`` if it fits there, else the first place it fits, or None. Candidates come from the
    most selective line of the block (an exact line, else a placeholder line's literal prefix or
    suffix); each line compared costs one unit of ``work``."""
    parts = [_PLACEHOLDER_RE.split(line) for line in old]
    lines = source.lines
    size = len(old)

    def fits(at: int) -> bool:
        if at < 0 or at + size > len(lines):
            return False
        for n, p in enumerate(parts):
            work.left -= 1
            if not _fits(p, lines[at + n]):
                return False
        return True

    if hint >= 0 and fits(hint):
        return hint
    # The most selective line of the block: the fewest source lines it could match.
    choice: tuple[int, int, str, bool] | None = None  # (count, offset, affix, is suffix)
    for n, p in enumerate(parts):
        if len(p) == 1:
            options = [(len(source.exact(p[0])), n, p[0], False)]
        else:
            options = []
            for affix, suffix in ((p[0], False), (p[-1], True)):
                if affix:
                    _, lo, hi = source.affixed(affix, suffix)
                    options.append((hi - lo, n, affix, suffix))
        for option in options:
            if choice is None or option[0] < choice[0]:
                choice = option
    best: list[int] | None = None
    if choice is not None:
        count, offset, affix, suffix = choice
        if count == 0:
            return None  # some line of the block matches nowhere
        work.left -= count
        if len(parts[offset]) == 1:
            best = source.exact(affix)
        else:
            index, lo, hi = source.affixed(affix, suffix)
            best = sorted(pos for _, pos in index[lo:hi])
        best = [pos - offset for pos in best]
    candidates = range(len(lines)) if best is None else best
    for at in candidates:
        if work.left <= 0:
            return None
        if fits(at):
            return at
    return None


def _fits(parts: list[str], line: str) -> bool:
    """Whether ``line`` is ``parts`` joined by wildcards of one or more characters (leftmost
    matching: linear, no backtracking)."""
    if len(parts) == 1:
        return line == parts[0]
    first, *middle, last = parts
    if not line.startswith(first) or not line.endswith(last):
        return False
    pos, stop = len(first), len(line) - len(last)
    for part in middle:
        at = line.find(part, pos + 1, stop)
        if at < 0:
            return False
        pos = at + len(part)
    return stop - pos >= 1
