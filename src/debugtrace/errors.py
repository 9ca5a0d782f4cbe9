"""Every error debugtrace raises: one hierarchy, one module.

Every front end (CLI, HTTP, pytest plugin) maps these to its own way of saying "your input is wrong"
(exit code 2, HTTP 4xx) versus "something on our side failed" (exit 1, HTTP 5xx)::

    DebugtraceError
    ├── InvalidTrace (ValueError)        bad trace or event input; .errors says where
    │   └── TrajectoryError              an import file is not the named trajectory format
    ├── UsageError (ValueError)          a front end was called wrongly (CLI arguments, API misuse)
    ├── TraceNotFound (LookupError)      no trace with this id
    ├── JobNotFound (LookupError)        no job with this id
    ├── NoOpenSession (LookupError)      no open recording session for this repository
    ├── UnknownBackend (LookupError)     no plugin registers this storage/sandbox/grader/executor
    ├── Conflict                         the trace is busy
    │   ├── FinalizeConflict             finalize is already running for it
    │   ├── JobConflict                  a finalize job is already queued or running
    │   ├── TraceIdConflict              a client-chosen trace id holds a different trace
    │   └── AppendConflict               a positioned append (``after``) does not fit the trace
    ├── StorageError                     the store failed (unreachable, full); nothing changed
    ├── ExportError (ValueError)         an export cannot start (format, dependency, output)
    ├── RepoError                        the repository cannot be used (refused URL, clone, commit)
    ├── GitError                         a git command failed; git's own words
    ├── PatchError (ValueError)          an edit is not a unified diff that can be read
    ├── ReportError (ValueError)         a test report cannot be read
    ├── SandboxError                     the sandbox itself failed (engine gone, image missing)
    │   └── EnvBuildError               a project's test environment could not be built
    ├── DependencyRefused                a dependency file, include or line is not used
    ├── GradeError                       a grader could not produce a valid grade
    ├── StageFailed                      inside finalize: the stage's work said no
    │   └── CouldNotTest                 the tests gave no verdict (why: the message)
    ├── StageSkipped                     inside finalize: the stage has nothing to do
    ├── ServerError                      the HTTP server's own signals
    │   ├── AuthError                    no valid credentials (401)
    │   ├── Forbidden                    valid credentials, not for this (403)
    │   └── BodyTooLarge                 the request body passed the limit (413)
    └── RemoteError                      a client of a debugtrace server (DEBUGTRACE_SERVER_URL)
        ├── ServerUnreachable            no answer (refused, timeout, 5xx): nothing to read
        ├── RemoteAuthError              the server refused DEBUGTRACE_TOKEN (401)
        ├── RemoteRejected               the server refused an operation (4xx); kept in failed/
        └── SpoolFull                    the local spool passed DEBUGTRACE_SPOOL_MAX_MB
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AppendConflict",
    "AuthError",
    "BodyTooLarge",
    "Conflict",
    "CouldNotTest",
    "DebugtraceError",
    "DependencyRefused",
    "EnvBuildError",
    "ErrorDetail",
    "ExportError",
    "FinalizeConflict",
    "Forbidden",
    "GitError",
    "GradeError",
    "InvalidTrace",
    "JobConflict",
    "JobNotFound",
    "NoOpenSession",
    "PatchError",
    "RemoteAuthError",
    "RemoteError",
    "RemoteRejected",
    "RepoError",
    "ReportError",
    "SandboxError",
    "ServerError",
    "ServerUnreachable",
    "SpoolFull",
    "StageFailed",
    "StageSkipped",
    "StorageError",
    "TraceIdConflict",
    "TraceNotFound",
    "TrajectoryError",
    "UnknownBackend",
    "UsageError",
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


class TrajectoryError(InvalidTrace):
    """The input is not a trajectory of the named format, or lacks something a trace needs.

    The message names the input and what is wrong, e.g. ``run.traj is not a SWE-agent trajectory:
    missing "trajectory"``.
    """


class UsageError(DebugtraceError, ValueError):
    """A front end was called wrongly (a CLI argument, a recorder used outside ``with``).

    ``code`` is the exit status the CLI leaves with (2: usage, 1: a failure on our side).
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class NoOpenSession(DebugtraceError, LookupError):
    """No trace is open for this repository (start one with ``debugtrace start``)."""


class Conflict(DebugtraceError):
    """The trace is busy with another finalize; try again when it ends."""


class FinalizeConflict(Conflict):
    """Finalize is already running for this trace."""


class JobConflict(Conflict):
    """The trace already has a finalize queued or running."""


class TraceIdConflict(Conflict):
    """A client-chosen trace id is taken by a different trace (another developer's, or other
    content); a repeat of the same submission is not a conflict."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        super().__init__(f"trace id {trace_id!r} is already used by a different trace")


class AppendConflict(Conflict):
    """A positioned append (``after=N``) found the trace with ``event_count`` events, neither
    ``N`` (append) nor already holding this very batch at ``N`` (a repeat)."""

    def __init__(self, trace_id: str, after: int, event_count: int) -> None:
        self.trace_id, self.after, self.event_count = trace_id, after, event_count
        super().__init__(
            f"trace {trace_id} has {event_count} events, not {after}: this batch does not "
            "follow on from it"
        )


class ExportError(DebugtraceError, ValueError):
    """The export cannot start: unknown format, missing optional dependency, unusable output."""


class RepoError(DebugtraceError):
    """The repository cannot be used (refused URL, unreachable, too big, unknown commit)."""


class GitError(DebugtraceError):
    """A git command failed; the message carries git's own words."""


class PatchError(DebugtraceError, ValueError):
    """An edit's diff cannot be read as a unified diff, or does not fit the file it changes."""


class ReportError(DebugtraceError, ValueError):
    """A test runner's report cannot be read."""


class SandboxError(DebugtraceError):
    """The sandbox itself failed (engine gone, image missing, ...); the message says what to do."""


class EnvBuildError(SandboxError):
    """A project's test environment could not be built (no interpreter fits ``requires-python``,
    a dependency has no wheel, npm failed); the message says which and what to do. The fix is
    then "could not test", never "not validated"."""


class DependencyRefused(DebugtraceError):
    """A dependency file, include or line that is not used; the message says why (never what it
    contains, which is untrusted)."""


class GradeError(DebugtraceError):
    """The grader could not produce a valid grade; the message says why (recorded on the trace)."""


class StageFailed(DebugtraceError):
    """Inside finalize: the stage's work said no; the message says why (status ``failed``)."""


class CouldNotTest(StageFailed):
    """Inside finalize: the tests ran (or tried to) but gave no verdict: collection or import
    errors, no test ran, a missing runner, an environment that could not be built. The fix is
    recorded as untested (``fix_validated`` null), never as not validated."""


class StageSkipped(DebugtraceError):
    """Inside finalize: the stage has nothing to do; the message says why (status ``skipped``)."""


class ServerError(DebugtraceError):
    """The HTTP server's own signals, turned into responses by its handlers."""


class AuthError(ServerError):
    """No valid credentials (401)."""


class Forbidden(ServerError):
    """Valid credentials, but not for this (403)."""


class BodyTooLarge(ServerError):
    """Raised inside the app's ``receive`` when the body passes the limit (413)."""


class RemoteError(DebugtraceError):
    """A client of a debugtrace server (``DEBUGTRACE_SERVER_URL``) could not do something."""


class ServerUnreachable(RemoteError):
    """The server did not answer (refused, timed out, 5xx) and the operation needs its answer
    (a read); writes are spooled instead."""


class RemoteAuthError(RemoteError):
    """The server refused the token (401): ``DEBUGTRACE_TOKEN`` is unset, wrong or revoked.
    The operations are kept in the spool and sent once the token is fixed."""


class RemoteRejected(RemoteError):
    """The server refused an operation for good (4xx: invalid, unknown trace, forbidden); it
    was moved to the spool's ``failed/`` with the server's message and is never retried."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpoolFull(RemoteError):
    """The local spool holds more than ``DEBUGTRACE_SPOOL_MAX_MB``: new operations are refused
    rather than filling the disk."""
