"""Which edits of a trace were dead ends: steps a fine-tuning row should not teach.

:func:`dead_ends` returns the seqs of the edit events that were dead ends, each with a short
reason. An edit is a dead end when

1. **finalize could not apply it** (its :class:`~debugtrace.results.EditResult` says ``failed`` or
   ``refused``; the row's tool message says so too). An edit finalize did not *try* (its message
   starts with ``not tried``: the apply stage's time budget ran out, or an earlier edit changed
   ``.git``) is not the agent's doing and is not reported; or
2. **a later edit undid it**: replaying the trace's diffs in order, every line it added was later
   deleted, and every line it deleted was later put back in the same place (rename: the file was
   later renamed back), and what it wrote is nowhere in the files at the end (not moved, not
   written again). The exact rule is in :class:`_Replay`. An importer's *final patch*
   (``details.final_patch``: the agent's submission, the net diff against the base commit) is
   not a step after the others and is left out of the replay.

Per-edit replay (``finalize --per-edit``) records, for each test the fix turned from failing to
passing, the *first* edit after which it passed (:attr:`~debugtrace.results.Validation.
turned_green_by`). That proves an edit *made a test pass*, so such an edit is never reported, even
when undone later (the agent found a working fix, then changed its mind). It proves nothing
more: it does not say which earlier edits were prerequisites (a helper the fix calls is needed
though no test turned green after it), nor whether an edit after the last green one kept other
tests passing, so it never *adds* a dead end by itself.

Commands run after a dead-end edit are not reported: running the tests after an edit is the
behaviour a row should teach, and their output is what showed the edit was wrong.

Pure and fast: no I/O, one pass over the diffs (parsed with ``unidiff``).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from debugtrace.errors import PatchError
from debugtrace.model import EditEvent, Trace
from debugtrace.storage import effective_run

__all__ = ["dead_ends", "instrumentation", "undone_edits"]

Content = tuple[str, bool]
"""A line as replay compares it: its text without the newline (a ``\\r`` of CRLF kept), and
whether it ends with a newline (False before ``\\ No newline at end of file``)."""


def dead_ends(trace: Trace) -> dict[int, str]:
    """The edit events of ``trace`` that were dead ends: ``{seq: reason}``, by seq.

    The seq is the event's ``seq`` (its 1-based position among all events when storage has not
    numbered it), as the chat rows' call ids ``call_<seq>`` use it. Reasons read like
    ``undone by edit #7`` or ``finalize could not apply it (failed: ...)``.
    """
    edits = _edit_events(trace)
    statuses = {r.seq: r for r in trace.result.edits}
    ends: dict[int, str] = {}
    replayed: list[tuple[int, EditEvent]] = []
    for seq, ev in edits:
        r = statuses.get(seq)
        if r is not None and r.status != "applied":
            if not r.message.startswith("not tried"):
                why = (r.message.splitlines() or [""])[0][:200]
                ends[seq] = f"finalize could not apply it ({r.status}{': ' + why if why else ''})"
            continue  # finalize's tree never had it: neither do we
        if (ev.details.model_extra or {}).get("final_patch") is not True:
            replayed.append((seq, ev))
    if _independent(replayed):
        return dict(sorted(ends.items()))
    v = effective_run(trace.result).validation
    green = set(v.turned_green_by.values()) if v is not None else set()
    diffs = dict(replayed)
    for seq, by in undone_edits(replayed).items():
        # instrumentation taken out once it spoke (a print, a breakpoint) was the debugging
        if seq not in green and not instrumentation(diffs[seq].details.diff):
            ends[seq] = f"undone by edit #{by}"
    return dict(sorted(ends.items()))


# A line that only shows or stops the program: how a developer looks inside it.
_PROBE = re.compile(
    r"\s*(?:print\s*\(|console\.(?:log|debug|info|warn|error|trace)\s*\(|"
    r"(?:logging|logger|log|LOG)\.\w+\s*\(|breakpoint\s*\(|import\s+i?pdb|i?pdb\.set_trace|"
    r"debugger\b|dbg!|e?println!|eprint!|fmt\.(?:Print|Fprint)|System\.(?:out|err)\.print|"
    r"puts\b|pp?\s|var_dump\s*\(|error_log\s*\(|#|//)"
)


def instrumentation(diff: str) -> bool:
    """Whether an edit only adds probes: every line it adds prints, logs or stops the program
    (``print(``, ``console.log(``, ``logging.debug(``, ``breakpoint()``, ``dbg!``...) or is a
    comment or blank, and it removes nothing. Such an edit undone later is not a dead end: it is
    how the bug was looked at."""
    added = 0
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line.startswith("-"):
            return False
        if line.startswith("+"):
            body = line[1:]
            if body.strip() and not _PROBE.match(body):
                return False
            added += 1
    return added > 0


def undone_edits(edits: Iterable[tuple[int, EditEvent]]) -> dict[int, int]:
    """Of ``edits`` (``(seq, event)`` in order, as applied), those a later one undid:
    ``{seq: seq of the edit that completed the undo}``."""
    replay = _Replay()
    for seq, ev in edits:
        replay.apply(seq, ev.details.file, ev.details.diff)
    return replay.result()


def _independent(edits: list[tuple[int, EditEvent]]) -> bool:
    """Whether no edit can undo another without replaying them: each changes one file (one
    ``+++`` header at most), no two the same one, and none renames (the common trace with one
    edit, or one per file; a cheap test that only ever sends a trace to the replay)."""
    files = {ev.details.file for _, ev in edits}
    if len(files) < len(edits):
        return False
    for _, ev in edits:
        diff = ev.details.diff
        if "rename from " in diff or diff.count("+++ ") > 1:
            return False
    return True


def _edit_events(trace: Trace) -> list[tuple[int, EditEvent]]:
    return [(seq, ev) for seq, ev in trace.numbered() if isinstance(ev, EditEvent)]


@dataclass
class _Line:
    content: Content
    tag: int | None
    """The seq of the edit that wrote the line; None for the base commit's."""


@dataclass
class _Gap:
    """Lines an edit deleted, remembered where they were: before line ``pos``."""

    pos: int
    seq: int
    content: tuple[Content, ...]
    tags: tuple[int | None, ...]
    """Who had written each deleted line (None: the base commit): putting a line back revives
    its author."""


@dataclass
class _File:
    """What replay knows of one file: the lines the diffs showed (by line number), the deletions
    not yet put back, and the paths it was renamed from."""

    lines: dict[int, _Line] = field(default_factory=dict)
    gaps: list[_Gap] = field(default_factory=list)
    renamed_from: list[tuple[int, str]] = field(default_factory=list)
    exists: bool | None = None
    broken: bool = False

    def seqs(self) -> set[int]:
        found = {ln.tag for ln in self.lines.values() if ln.tag is not None}
        return found | {g.seq for g in self.gaps} | {s for s, _ in self.renamed_from}


class _Replay:
    """Replays diffs over partial files to find which edits were undone.

    Each file is known only where the diffs showed it (context and deleted lines; added lines are
    always known). Every known line carries the seq of the edit that wrote it. A hunk is applied
    by walking its lines from its stated line numbers; a *change block* is a run of ``-``/``+``
    lines between context lines. An edit E's state:

    - ``alive[E]``: lines E added that are still in the file (a later edit deleting one counts
      it down, whatever else that edit does);
    - ``open_gaps[E]``: the blocks of lines E deleted, remembered at their place (before the
      line that followed them). A later change block that touches the place (deletes a line
      next to it, or inserts right there) puts them back if its added lines hold them, in
      order, contiguous; if it does not, they are lost for good and E can never be undone;
    - ``open_renames[E]``: E renamed the file; put back when a later edit renames it back.

    E is **undone** by edit U when, after U, E changed something, and ``alive``, ``open_gaps``
    and ``open_renames`` of E are all zero; it stays undone unless a later edit revives it.
    Lines put back are their author's again (the base commit's, or the edit that wrote them):
    a revert of a revert revives the first edit, and a line written back is never the
    restorer's own. At the end, an undone edit is reported only if none of the lines it wrote
    is found, by its text (trimmed, with a letter or digit), among the lines *later* edits left
    in the files: code moved elsewhere, or written again, is not a dead end (seqs grow in
    replay order). Lines of earlier edits or the base do not count: a file renamed and renamed
    back holds the text the rename wrote, as the earlier edit's lines.

    Anything replay cannot follow makes the edits whose state is in that file unprovable, never
    dead ends: a hunk whose lines differ from what earlier diffs showed at that line number, a
    diff that does not parse, a binary diff. Mode-only changes are ignored.
    """

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.alive: Counter[int] = Counter()
        self.open_gaps: Counter[int] = Counter()
        self.open_renames: Counter[int] = Counter()
        self.changed: set[int] = set()
        self.unprovable: set[int] = set()
        self.undone: dict[int, int] = {}
        self.touched: set[int] = set()
        self.wrote: dict[int, set[str]] = {}
        """The texts of the lines each edit wrote (not those it put back), trimmed."""
        self.lost: list[_Line] = []
        """The lines known of files replay stopped following."""

    def apply(self, seq: int, file: str, diff: str) -> None:
        self.touched = set()
        text = diff if diff.endswith("\n") else diff + "\n"
        if not any(line.startswith("--- ") for line in text.splitlines()):
            text = f"--- a/{file}\n+++ b/{file}\n{text}"
        try:
            if "\nGIT binary patch" in text or "\nBinary files " in "\n" + text:
                raise PatchError("binary")
            patched = list(PatchSet(text))
        except (PatchError, UnidiffParseError, ValueError):
            self._break(file, seq)
            return
        for pf in patched:
            self._apply_file(seq, pf)
        for s in self.touched - self.unprovable:
            if s != seq and s in self.changed and self._clear(s):
                self.undone[s] = seq
            else:
                self.undone.pop(s, None)  # revived (put back, renamed back)

    def result(self) -> dict[int, int]:
        """The undone edits none of whose lines is left at the end, and none of whose writing a
        later edit left (moved or written again)."""
        left = [ln for f in self.files.values() for ln in f.lines.values()] + self.lost
        tags = {ln.tag for ln in left}
        newest: dict[str, int] = {}  # text -> the latest edit that left a line with it
        for ln in left:
            if ln.tag is not None:
                text = _text(ln.content)
                newest[text] = max(newest.get(text, ln.tag), ln.tag)
        return {
            s: by
            for s, by in self.undone.items()
            if s not in self.unprovable
            and s not in tags
            and not any(newest.get(text, s) > s for text in self.wrote.get(s, ()))
        }

    def _clear(self, s: int) -> bool:
        return not (self.alive[s] or self.open_gaps[s] or self.open_renames[s])

    def _break(self, path: str, seq: int) -> None:
        f = self.files.get(path)
        if f is not None:
            self.unprovable |= f.seqs()
            self.lost += f.lines.values()
        self.files[path] = _File(broken=True)
        self.unprovable.add(seq)

    def _apply_file(self, seq: int, pf: Any) -> None:
        src, tgt = _path(pf.source_file), _path(pf.target_file)
        key = src if src is not None else tgt
        if key is None:
            return
        f = self.files.setdefault(key, _File())
        if f.broken:
            self.unprovable.add(seq)
            return
        try:
            if src is None and (f.exists or f.lines):
                raise PatchError("a new file that exists")
            self._hunks(seq, f, list(pf))
            if tgt is None:
                if f.lines:
                    raise PatchError("a deletion that leaves lines")
                f.exists = False
            else:
                f.exists = True
        except PatchError:
            self._break(key, seq)
            return
        if src is not None and tgt is not None and src != tgt:
            taken = self.files.get(tgt)
            if taken is not None and (taken.lines or taken.gaps or taken.broken):
                self.unprovable |= taken.seqs() | {seq}  # renamed over a file replay followed
                self.lost += taken.lines.values()
            del self.files[src]
            self.files[tgt] = f
            for s, old in list(f.renamed_from):
                if old == tgt:
                    f.renamed_from.remove((s, old))
                    self.open_renames[s] -= 1
                    self.touched.add(s)
            f.renamed_from.append((seq, src))
            self.open_renames[seq] += 1
            self.changed.add(seq)

    def _hunks(self, seq: int, f: _File, hunks: list[Any]) -> None:
        lines: dict[int, _Line] = {}
        gaps: list[_Gap] = []
        spans = []  # (first source line, source length, target shift after the hunk)
        for h in hunks:
            s0 = h.source_start if h.source_length else h.source_start + 1
            t0 = h.target_start if h.target_length else h.target_start + 1
            spans.append((s0, h.source_length, t0 + h.target_length - s0 - h.source_length))
        pending: dict[int, list[_Gap]] = {}
        for g in f.gaps:
            pending.setdefault(g.pos, []).append(g)
        for h, (s0, _, _) in zip(hunks, spans, strict=True):
            t0 = h.target_start if h.target_length else h.target_start + 1
            self._walk(seq, f, h, s0, t0, lines, gaps, pending)

        # hunks come in file order: a binary search finds the last hunk at or before a line
        # (a scan of every hunk per known line was quadratic on diffs of many small hunks)
        ends = [s0 + n for s0, n, _ in spans]
        starts = [s0 for s0, _, _ in spans]
        if any(b < a for a, b in zip(ends, starts[1:], strict=False)):
            raise PatchError("hunks out of order")  # git never writes them so: no replay

        def shift(pos: int) -> int:
            i = bisect.bisect_right(ends, pos)  # hunks wholly before pos
            return pos + (spans[i - 1][2] if i else 0)

        def inside(pos: int) -> bool:
            i = bisect.bisect_right(starts, pos) - 1
            return i >= 0 and starts[i] <= pos < ends[i]

        for pos, ln in f.lines.items():
            if not inside(pos):
                _put(lines, shift(pos), ln)
        for pos, group in pending.items():
            gaps += [replace(g, pos=shift(pos)) for g in group]
        f.lines, f.gaps = lines, gaps

    def _walk(
        self,
        seq: int,
        f: _File,
        hunk: Any,
        src: int,
        tgt: int,
        lines: dict[int, _Line],
        gaps: list[_Gap],
        pending: dict[int, list[_Gap]],
    ) -> None:
        body = _body(hunk)
        removed: list[_Line] = []
        added: list[_Line] = []
        block_at: int | None = None  # target line where the open change block starts
        attached: list[_Gap] = []
        for i in range(len(body) + 1):
            kind, content = body[i] if i < len(body) else (" ", ("", True))
            at_end = i == len(body)
            here = pending.pop(src, [])
            if here:
                if block_at is not None or (not at_end and kind != " "):
                    attached += here
                else:
                    gaps += [replace(g, pos=tgt) for g in here]
            if kind == " " and block_at is not None:
                self._close(seq, block_at, removed, added, attached, gaps)
                removed, added, attached, block_at = [], [], [], None
            if at_end:
                break
            if kind != " " and block_at is None:
                block_at = tgt
            if kind == "+":
                new = _Line(content, seq)
                _put(lines, tgt, new)
                added.append(new)
                self.alive[seq] += 1
                self.changed.add(seq)
                tgt += 1
                continue
            known = f.lines.get(src)
            if known is not None and known.content != content:
                raise PatchError(f"line {src}")
            line = known or _Line(content, None)
            if kind == " ":
                _put(lines, tgt, line)
                tgt += 1
            else:
                removed.append(line)
                if line.tag is not None:
                    self.alive[line.tag] -= 1
                    self.touched.add(line.tag)
            src += 1

    def _close(
        self,
        seq: int,
        at: int,
        removed: list[_Line],
        added: list[_Line],
        attached: list[_Gap],
        gaps: list[_Gap],
    ) -> None:
        """End a change block: put back the deletions it restores (their authors revived), lose
        those it overwrites, remember the lines it deleted and what it wrote."""
        contents = [ln.content for ln in added]
        used = [False] * len(added)
        for g in attached:
            start = _find(contents, used, g.content)
            if start is None:
                self.unprovable.add(g.seq)  # overwritten: the edit can never be undone
                continue
            for k, tag in zip(range(start, start + len(g.content)), g.tags, strict=True):
                used[k] = True
                added[k].tag = tag
                self.alive[seq] -= 1
                if tag is not None:
                    self.alive[tag] += 1
                    self.touched.add(tag)
            self.open_gaps[g.seq] -= 1
            self.touched.add(g.seq)
        wrote = self.wrote.setdefault(seq, set())
        wrote |= {
            _text(ln.content) for ln, put_back in zip(added, used, strict=True) if not put_back
        }
        wrote.discard("")
        if removed:
            content = tuple(ln.content for ln in removed)
            gaps.append(_Gap(at, seq, content, tuple(ln.tag for ln in removed)))
            self.open_gaps[seq] += 1
            self.changed.add(seq)


def _body(hunk: Any) -> list[tuple[str, Content]]:
    """The hunk's lines as (kind, content); a ``\\`` marker turns the line before it into one
    without a newline."""
    body: list[tuple[str, Content]] = []
    for line in hunk:
        if line.line_type == "\\":
            if body:
                kind, (text, _) = body[-1]
                body[-1] = (kind, (text, False))
            continue
        value: str = line.value
        body.append((line.line_type, (value[:-1] if value.endswith("\n") else value, True)))
    return body


def _text(content: Content) -> str:
    """A line's text as moved code is recognised: trimmed; empty unless it has a letter or
    digit (a blank line or a lone brace proves nothing)."""
    text = content[0].strip()
    return text if any(ch.isalnum() for ch in text) else ""


def _find(added: list[Content], used: list[bool], want: tuple[Content, ...]) -> int | None:
    n = len(want)
    for i in range(len(added) - n + 1):
        if not any(used[i : i + n]) and tuple(added[i : i + n]) == want:
            return i
    return None


def _put(lines: dict[int, _Line], pos: int, line: _Line) -> None:
    if pos in lines:
        raise PatchError(f"two lines at {pos}")
    lines[pos] = line


def _path(name: str | None) -> str | None:
    """A diff header's path without git's ``a/``/``b/`` prefix; None for ``/dev/null``."""
    if not name or name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name
