"""Reading a checkout's marker files on the host: contained, bounded, never a device or FIFO."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["MAX_MARKER_BYTES", "read_small"]

MAX_MARKER_BYTES = 1024**2
"""Largest ``package.json``, Makefile or configuration file read to detect a project."""


def read_small(root: Path, name: str) -> str | None:
    """The text of ``root/name`` if it is a regular file inside ``root`` (after resolving
    symlinks) of at most :data:`MAX_MARKER_BYTES`, else None: a repository's ``Makefile`` may
    link to ``/dev/zero`` or a host file, and is read on the host."""
    try:
        base = root.resolve()
        real = (base / name).resolve(strict=True)
        if not real.is_relative_to(base):
            return None
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, RuntimeError):
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(MAX_MARKER_BYTES + 1)
    return data.decode("utf-8", "replace") if len(data) <= MAX_MARKER_BYTES else None
