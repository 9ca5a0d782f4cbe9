"""The local sandbox passes the sandbox contract, with and without bubblewrap."""

from __future__ import annotations

import shutil
import sys

import pytest

from debugtrace.sandbox.local import LocalSandbox
from debugtrace.testing import SandboxContract
from support.services import require


class TestLocalSandboxWithBwrap(SandboxContract):
    @pytest.fixture
    def sandbox(self) -> LocalSandbox:
        if not shutil.which("bwrap"):
            require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
        return LocalSandbox(use_bwrap=True)

    @pytest.fixture
    def python(self) -> list[str]:
        return [sys.executable]


def test_isolation_is_described() -> None:
    assert "bwrap" in LocalSandbox(use_bwrap=bool(shutil.which("bwrap"))).isolation
