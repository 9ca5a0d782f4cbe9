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


def bug_title(text: str | None, width: int = 120) -> str:
    """The first line of ``text`` that says something, without Markdown markers (headings,
    quotes, list markers, emphasis, code spans, links and images become their text), on one
    line, cut to ``width`` characters with an ellipsis."""
    line = ""
    for candidate in (text or "").splitlines():
        if not _MARKUP_ONLY.fullmatch(candidate):
            line = candidate
            break
    line = _BLOCK_PREFIX.sub("", line, count=1)
    line = _CLOSING_HASHES.sub("", line)
    line = _CODE.sub(lambda m: m.group(2).strip(), line)
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    for pattern in (_STRONG, _STRIKE):
        line = pattern.sub(lambda m: m.group(m.lastindex or 0), line)
    line = _EM_STAR.sub(r"\1", line)
    line = _EM_UNDERSCORE.sub(r"\1", line)
    flat = " ".join(line.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


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
