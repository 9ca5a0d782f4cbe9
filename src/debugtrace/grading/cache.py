"""A small file cache of grades: an unchanged trace and verdict is not graded (or paid for) twice.

Grades live as JSON files under ``settings.data_dir / "grade-cache" / <key>.json``. The key is a
:func:`~debugtrace.grading.trace_fingerprint` of everything the grade depends on (the trace, the
verdict, the grader, the model, the rubric version, the prompt hash), so a cache entry is never
stale: anything that changes gives a new key. Writes are atomic (temp file + ``os.replace``), so
concurrent graders never read half a file; unreadable or invalid files count as misses.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from debugtrace.errors import UsageError
from debugtrace.grading import trace_fingerprint
from debugtrace.results import Grade

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.model import Trace
    from debugtrace.results import Validation

__all__ = ["GradeCache", "grade_cache_key"]

_KEY = re.compile(r"[0-9a-f]{16,128}")


def grade_cache_key(
    trace: Trace,
    validation: Validation | None,
    *,
    grader: str,
    model: str,
    rubric_version: str,
    prompt_hash: str,
    extra: tuple[str, ...] = (),
) -> str:
    """The cache key of a grade: a fingerprint of the trace, its verdict and how it is graded.

    ``extra`` adds anything else the answer depends on (a grader version, the server's URL).
    """
    return trace_fingerprint(trace, validation, grader, model, rubric_version, prompt_hash, *extra)


class GradeCache:
    """Grades by key, one JSON file each, in ``directory`` (created on the first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_settings(cls, settings: Settings) -> GradeCache:
        """The cache in the configured data directory (``data_dir/grade-cache``)."""
        return cls(settings.data_dir / "grade-cache")

    def path(self, key: str) -> Path:
        """The file of ``key``; keys are hex digests, so nothing can escape the directory."""
        if not _KEY.fullmatch(key):
            raise UsageError(f"grade cache keys are lowercase hex digests, not {key!r}")
        return self.directory / f"{key}.json"

    def get(self, key: str) -> Grade | None:
        """The cached grade of ``key``, or None (missing, unreadable or not a valid grade)."""
        try:
            text = self.path(key).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        try:
            return Grade.model_validate_json(text)
        except ValidationError:
            return None

    def put(self, key: str, grade: Grade) -> None:
        """Store ``grade`` under ``key`` atomically (a reader sees the old file or the new one)."""
        target = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(grade.model_dump_json())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
