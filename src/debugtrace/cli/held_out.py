"""Held-out tests given on the command line: ``finalize --test-patch FILE --fail-to-pass ID``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from debugtrace.errors import UsageError

__all__ = ["add_arguments", "read_test_patch", "test_ids"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--test-patch`` and ``--fail-to-pass`` on ``finalize``."""
    parser.add_argument(
        "--test-patch",
        metavar="FILE|-",
        help="held-out tests: a diff of test files applied to both runs (default: the trace's)",
    )
    parser.add_argument(
        "--fail-to-pass",
        action="append",
        metavar="TEST_ID",
        help="a test that must go from failing to passing for the fix to validate (repeatable)",
    )


def read_test_patch(path: str, limit: int) -> str:
    """The held-out test patch of ``finalize --test-patch``: UTF-8 text of at most ``limit``
    bytes (``DEBUGTRACE_MAX_DIFF_BYTES``, the bound on an edit's diff) that reads as a diff."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as f:
                data = f.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"--test-patch {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--test-patch {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UsageError(
            f"--test-patch {path}: over {limit} bytes (DEBUGTRACE_MAX_DIFF_BYTES bounds a diff)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--test-patch {path}: not UTF-8 text") from None
    if "\x00" in text:
        raise UsageError(f"--test-patch {path}: holds a NUL byte, not a diff")
    if text.strip() and not any(line.startswith("+++ ") for line in text.splitlines()):
        raise UsageError(f"--test-patch {path}: not a unified diff (no '+++ b/FILE' line)")
    return text


def test_ids(values: list[str]) -> tuple[str, ...]:
    """The ``--fail-to-pass`` test ids, checked as the trace's ``held_out`` checks them."""
    from pydantic import ValidationError

    from debugtrace.model import HeldOut

    for value in values:
        try:
            HeldOut(fail_to_pass=[value])
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise UsageError(f"--fail-to-pass {value[:80]!r}: {msg}".replace("\n", " ")) from None
    try:
        HeldOut(fail_to_pass=values)
    except ValidationError as exc:
        raise UsageError(f"--fail-to-pass: {exc.errors()[0]['msg']}") from None
    return tuple(values)
