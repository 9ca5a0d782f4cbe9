"""Text as the dashboard lists it: a bug description's title, money.

Bug descriptions are untrusted and often Markdown (an issue body, an agent's task). A listing
shows their first line as plain text: the Markdown markers are removed, never rendered, and the
result is still escaped by the templates like any other value (no HTML from it ever reaches a
page as markup).
"""

from __future__ import annotations

import math
import re

__all__ = ["bug_title", "is_cost_key", "money"]

_MARKUP_ONLY = re.compile(r"[\s#>*_`~=\-|:+]*")
"""A line with nothing but Markdown markers (a rule, a fence, a table border)."""
_BLOCK_PREFIX = re.compile(
    r"^(?:\s{0,3}>\s?)*\s{0,3}(?:#{1,6}\s+|[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,9}[.)]\s+)?"
)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^\s>]+)>")
_STRONG = re.compile(r"(?<![\w*])(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_EM_STAR = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE = re.compile(r"(`+)(.+?)\1")
_CLOSING_HASHES = re.compile(r"\s+#+\s*$")
_FENCE = re.compile(r"\s{0,3}(?:```|~~~)")
_IDENTIFIER = re.compile(r"\w+")
_SPAN = "\x00{}\x00"
"""Where a code span waits while emphasis is stripped (its text is code: ``__init__`` stays)."""


def bug_title(text: str | None, width: int = 120) -> str:
    """The first line of ``text`` that says something, without Markdown markers (headings,
    quotes, list markers, emphasis, code spans, links and images become their text), on one
    line, cut to ``width`` characters with an ellipsis."""
    line = ""
    for candidate in (text or "").splitlines():
        if not _MARKUP_ONLY.fullmatch(candidate) and not _FENCE.match(candidate):
            line = candidate
            break
    line = _BLOCK_PREFIX.sub("", line, count=1)
    line = _CLOSING_HASHES.sub("", line)
    spans: list[str] = []

    def aside(m: re.Match[str]) -> str:
        spans.append(m.group(2).strip())
        return _SPAN.format(len(spans) - 1)

    line = _CODE.sub(aside, line.replace("\x00", ""))
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _STRONG.sub(_unless_dunder, line)
    line = _STRIKE.sub(lambda m: m.group(1), line)
    line = _EM_STAR.sub(r"\1", line)
    line = _EM_UNDERSCORE.sub(_unless_dunder, line)
    line = re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], line)
    flat = " ".join(line.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _unless_dunder(m: re.Match[str]) -> str:
    """Strong emphasis, unless ``__`` wraps a bare name (``__init__``): titles name Python's
    dunders far more often than they embolden a word with underscores."""
    inner = m.group(m.lastindex or 0)
    if m.group(0).startswith("__") and _IDENTIFIER.fullmatch(m.group(0).strip("_")):
        return m.group(0)
    return inner


def money(value: object) -> str:
    """A cost in US dollars as people read it: ``$0.02``, ``<$0.01``, ``$1,234.50``; a value
    that is not a finite non-negative number is shown as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value) or value < 0:
        return str(value)
    if value == 0:
        return "$0.00"
    if value < 0.005:
        return "<$0.01"
    return f"${value:,.2f}"


def is_cost_key(key: str) -> bool:
    """Whether a metadata key names a cost in dollars (``cost``, ``total_cost``, ``cost_usd``,
    ``accumulated_cost``, ...)."""
    k = key.lower()
    return k == "cost" or k.endswith("_cost") or k.startswith("cost_") or k.endswith("_cost_usd")
