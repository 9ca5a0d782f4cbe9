"""Bounded text: what the recorder, the sandboxes and the stage logs keep of huge outputs."""

from __future__ import annotations

from debugtrace.textutil import BoundedOutput, head_tail


def test_bounded_output_keeps_head_and_tail_and_counts_everything() -> None:
    out = BoundedOutput(10 + BoundedOutput.MARKER_ROOM)
    for chunk in (b"abc", b"defghij", b"klmnop"):
        out.feed(chunk)
    assert out.total == 16
    assert out.text() == "abcde\n[... 6 bytes of output cut ...]\nlmnop"


def test_bounded_output_under_the_limit_is_unchanged() -> None:
    small = BoundedOutput(100)
    small.feed("héllo".encode())
    assert small.text() == "héllo"


def test_a_huge_stream_stays_within_the_limit() -> None:
    out = BoundedOutput(1000)
    out.feed(b"HEAD")
    for _ in range(10_000):
        out.feed(b"y" * 1000)
    out.feed(b"TAIL")
    text = out.text()
    assert text.startswith("HEAD") and text.endswith("TAIL")
    assert len(text.encode()) <= 1000


def test_head_tail_cuts_the_middle_and_says_so() -> None:
    text = "START " + "x" * 10_000 + " END"
    cut = head_tail(text, 200)
    assert cut.startswith("START") and cut.endswith("END")
    assert "middle cut" in cut
    assert len(cut.encode()) <= 200
    assert head_tail("short", 200) == "short"
