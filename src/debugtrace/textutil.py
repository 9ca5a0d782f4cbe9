"""Small text helpers shared by the recorder, the pipeline and the front ends."""

from __future__ import annotations

import re
from typing import IO

__all__ = ["BoundedOutput", "head_tail", "strip_debugtrace_flags"]


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


class BoundedOutput:
    """Keeps the first and last ``limit/2`` bytes of a stream and counts the rest."""

    MARKER_ROOM = 64
    """Bytes reserved for the line that says how much was cut, so the text fits in ``limit``."""

    def __init__(self, limit: int) -> None:
        self.half = max((limit - self.MARKER_ROOM) // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the stream."""
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def drain(self, stream: IO[bytes]) -> None:
        """Read ``stream`` to its end."""
        while chunk := stream.read(65536):
            self.feed(chunk)

    def text(self) -> str:
        """What was kept, decoded, with a marker where the middle was dropped."""
        kept = len(self.head) + len(self.tail)
        head = self.head.decode("utf-8", "replace")
        if kept >= self.total:
            return head + self.tail.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "ignore")
        return f"{head}\n[... {self.total - kept} bytes of output cut ...]\n{tail}"


# One shell word: quoted and unquoted pieces, each told by its first character (linear time).
_WORD = r"""(?:'[^']*'|"(?:[^"\\]|\\.)*"|\\.|[^\s'"\\;&|<>()])+"""
_FLAGS = re.compile(
    rf"\s+(?:--debugtrace-note(?:=|\s+){_WORD}|--debugtrace(?:-[a-z]+)*(?:={_WORD})?)"
    r"(?=\s|$|[;&|<>()])"
)


def strip_debugtrace_flags(command: str) -> str:
    """``command`` without the pytest plugin's ``--debugtrace*`` options (and their values):
    how the run was recorded, not how the bug was debugged (bug titles, training rows). The
    rest of the line stays exactly as it was written (quotes, operators, variables); it is
    never split, expanded or run."""
    if "--debugtrace" not in command:
        return command
    return _FLAGS.sub("", command)
