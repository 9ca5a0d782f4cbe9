"""The local sandbox passes the sandbox contract, with and without bubblewrap."""

from __future__ import annotations

import shutil
import sys

import pytest

from conftest import require
from debugtrace.local_sandbox import BoundedOutput, LocalSandbox
from debugtrace.testing import SandboxContract


class TestLocalSandboxWithBwrap(SandboxContract):
    @pytest.fixture
    def sandbox(self) -> LocalSandbox:
        if not shutil.which("bwrap"):
            require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
        return LocalSandbox(use_bwrap=True)

    @pytest.fixture
    def python(self) -> list[str]:
        return [sys.executable]


def test_bounded_output_keeps_head_and_tail() -> None:
    out = BoundedOutput(10 + BoundedOutput.MARKER_ROOM)
    for chunk in (b"abc", b"defghij", b"klmnop"):
        out.feed(chunk)
    assert out.total == 16
    assert out.text() == "abcde\n[... 6 bytes of output cut ...]\nlmnop"
    small = BoundedOutput(100)
    small.feed(b"hello")
    assert small.text() == "hello"


def test_isolation_is_described() -> None:
    assert "bwrap" in LocalSandbox(use_bwrap=bool(shutil.which("bwrap"))).isolation
