"""Typed errors raised by the public API.

Every front end (CLI, HTTP, pytest plugin) maps these to its own way of saying "your input is wrong"
(exit code 2, HTTP 4xx) versus "something on our side failed".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DebugtraceError",
    "ErrorDetail",
    "InvalidTrace",
    "JobNotFound",
    "StorageError",
    "TraceNotFound",
    "UnknownBackend",
]


class DebugtraceError(Exception):
    """Base class of every error debugtrace raises on purpose."""


@dataclass(frozen=True)
class ErrorDetail:
    """One problem in an input document: where (`loc`, a path of keys/indexes) and what (`msg`)."""

    loc: tuple[str | int, ...]
    msg: str

    @property
    def where(self) -> str:
        """The location as a dotted path, e.g. ``events.3.details.output``."""
        return ".".join(str(p) for p in self.loc) or "(document)"

    def __str__(self) -> str:
        return f"{self.where}: {self.msg}" if self.loc else self.msg


class InvalidTrace(DebugtraceError, ValueError):
    """The input is not a valid trace or event list; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[ErrorDetail] | str) -> None:
        if isinstance(errors, str):
            errors = [ErrorDetail((), errors)]
        self.errors: list[ErrorDetail] = list(errors)
        first = str(self.errors[0]) if self.errors else "invalid input"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more)

    @classmethod
    def from_pydantic(
        cls, raw: Iterable[Mapping[str, Any]], prefix: tuple[str | int, ...] = ()
    ) -> InvalidTrace:
        """Build from ``pydantic.ValidationError.errors()``, keeping each field location."""
        details = []
        for err in raw:
            # Pydantic adds the union tag to the path ("events.0.command.details"); drop it so the
            # location names only keys the user wrote.
            loc = _drop_union_tags(tuple(err.get("loc", ())))
            msg = str(err.get("msg", "invalid"))
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            details.append(ErrorDetail(prefix + loc, msg))
        return cls(details)

    def as_dicts(self) -> list[dict[str, Any]]:
        """The errors as JSON-ready dicts (``{"loc": [...], "msg": "..."}``), e.g. for HTTP 422."""
        return [{"loc": list(e.loc), "msg": e.msg} for e in self.errors]


_UNION_TAGS = frozenset({"reasoning", "command", "edit"})


def _drop_union_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Remove the event-union tag pydantic inserts after a list index (or at the start)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        follows_index = i == 0 or isinstance(loc[i - 1], int)
        if part in _UNION_TAGS and follows_index:
            continue
        out.append(part)
    return tuple(out)


class TraceNotFound(DebugtraceError, LookupError):
    """No trace with this id is stored."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        super().__init__(f"no trace with id {trace_id!r}")


class JobNotFound(DebugtraceError, LookupError):
    """No job with this id is stored."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r}")


class StorageError(DebugtraceError):
    """The storage backend failed (unreachable database, full disk, ...); nothing was changed."""


class UnknownBackend(DebugtraceError, LookupError):
    """A storage/sandbox/grader name that no installed plugin registers."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        self.kind, self.name = kind, name
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {kind} {name!r}; known {kind} backends: {names}. {hint}".strip())
