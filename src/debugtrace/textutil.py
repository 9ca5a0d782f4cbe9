"""Small text helpers shared by the recorder, the pipeline and the front ends."""

from __future__ import annotations

__all__ = ["head_tail"]


def head_tail(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, keeping its head and tail.

    The middle is replaced by a line saying how much was cut, because the start of a log (what ran)
    and its end (how it failed) are what a reader needs.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    marker = f"\n[... {len(data)} bytes, middle cut ...]\n"
    budget = max(max_bytes - len(marker.encode()), 0)
    head = data[: budget // 2].decode("utf-8", "ignore")
    tail = data[len(data) - (budget - budget // 2) :].decode("utf-8", "ignore")
    return head + marker + tail
