"""Which traces go into a dataset: the filters on the trace itself, duplicates, a limit.

The filters on the verdict and score run in storage (:class:`debugtrace.storage.ExportQuery`);
these run on each trace as it streams by, so memory stays flat but for one short key per
distinct fix (:func:`fix_key`) when duplicates are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from debugtrace.export.chat import trace_model, trace_source
from debugtrace.export.hygiene import strip_git_headers
from debugtrace.model import EditEvent, Trace

__all__ = ["Selection", "fix_key", "repo_key"]


def repo_key(repo_url: str) -> str:
    """The repository a URL or path names, for grouping: lower case, without a scheme, user,
    ``.git`` or trailing slash (``https://github.com/Pallets/jinja.git`` and
    ``git@github.com:pallets/jinja`` are both ``github.com/pallets/jinja``)."""
    key = repo_url.strip().lower()
    key = re.sub(r"^[a-z+]+://", "", key)
    key = re.sub(r"^[^@/]+@", "", key)
    key = key.replace(":", "/", 1) if re.match(r"^[^/]+:[^/0-9]", key) else key
    return key.removesuffix("/").removesuffix(".git").removesuffix("/")


def fix_key(trace: Trace) -> str:
    """What makes two traces the same example: the same repository, the same bug (its text,
    whitespace aside) and the same net change. The change is each file's added lines less its
    removed ones over every edit, each line with the function its hunk names (git's ``@@ ...
    @@ def area():``), so an attempt that a later edit undid cancels out and two sessions that
    reached the same fix by different paths have the same key. Without a net change (no edits,
    or every one undone) the events themselves are compared: only the same session twice is a
    duplicate, not every attempt at the task."""
    net: dict[str, Counter[tuple[str, str]]] = {}
    for ev in trace.events:
        if not isinstance(ev, EditEvent):
            continue
        counts = net.setdefault(ev.details.file, Counter())
        where, in_hunk = "", False
        for line in strip_git_headers(ev.details.diff).splitlines():
            if line.startswith("@@"):
                in_hunk, where = True, line.rsplit("@@", 1)[-1].strip()
            elif not in_hunk:
                continue  # ---/+++ headers
            elif line.startswith("+"):
                counts[(where, line[1:].rstrip("\r"))] += 1
            elif line.startswith("-"):
                counts[(where, line[1:].rstrip("\r"))] -= 1
    h = hashlib.sha256()
    h.update(repo_key(trace.repo_url).encode())
    h.update(b"\0" + " ".join(trace.bug_description.split()).encode())
    changed = False
    for file in sorted(net):
        kept = sorted((key, n) for key, n in net[file].items() if n)
        if kept:
            changed = True
            h.update(b"\0" + file.encode() + b"\0" + repr(kept).encode())
    if not changed:
        for ev in trace.events:
            h.update(b"\0" + ev.details.model_dump_json(exclude={"duration_s"}).encode())
    return h.hexdigest()[:32]


@dataclass
class Selection:
    """The trace-level filters of an export; :meth:`apply` streams the traces that pass.

    ``repo``: the repository URL or path contains this (case-insensitive); ``source``: recorded
    or imported by this (``pytest``, ``shell``, ``claude-code``, ``swe-agent``...; see
    :func:`~debugtrace.export.chat.trace_source`); ``model``: the agent's model contains this;
    ``dedup``: keep the first (newest) of traces with the same :func:`fix_key`; ``limit``: stop
    after this many.
    """

    repo: str | None = None
    source: str | None = None
    model: str | None = None
    dedup: bool = False
    limit: int | None = None
    duplicates: list[str] = field(default_factory=list)
    """The ids of the traces :meth:`apply` left out as duplicates."""

    def accepts(self, trace: Trace) -> bool:
        """Whether ``trace`` passes the repository, source and model filters."""
        if self.repo and self.repo.lower() not in trace.repo_url.lower():
            return False
        if self.source and (trace_source(trace) or "").lower() != self.source.lower():
            return False
        model = trace_model(trace) or ""
        return not (self.model and self.model.lower() not in model.lower())

    def apply(self, traces: Iterable[Trace]) -> Iterator[Trace]:
        """The traces that pass, duplicates left out, at most ``limit`` of them."""
        seen: set[str] = set()
        n = 0
        for trace in traces:
            if self.limit is not None and n >= self.limit:
                return
            if not self.accepts(trace):
                continue
            if self.dedup:
                key = fix_key(trace)
                if key in seen:
                    self.duplicates.append(str(trace.id))
                    continue
                seen.add(key)
            n += 1
            yield trace
