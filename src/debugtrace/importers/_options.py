"""Import options and the import error: kept apart from the converters so that naming the formats
(``debugtrace --help``) loads nothing heavy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from debugtrace.errors import TrajectoryError

__all__ = ["ImportOptions", "TrajectoryError"]

_BASE_COMMIT = re.compile(r"^[^\s-]\S*$")


@dataclass(frozen=True)
class ImportOptions:
    """What the caller knows that a trajectory may not say; given values win over the file's."""

    name: str = "input"
    """How error messages name the input (a file name, ``stdin``)."""
    repo_url: str | None = None
    """The repository the agent worked on (required when the trajectory does not name one)."""
    base_commit: str | None = None
    """The commit the agent started from."""
    developer_id: str | None = None
    """Who the trace belongs to (default: the agent's name, ``swe-agent`` / ``openhands``)."""
    max_command_bytes: int = 4096
    """Longer command lines are shortened; the whole text goes to ``details.full_command``."""
    max_details_bytes: int = 64 * 1024
    """``details.full_command`` is cut to fit this (the limit on an event's extra keys)."""

    def fail(self, what: str, problem: str) -> TrajectoryError:
        """``NAME is not WHAT: PROBLEM``, as an exception to raise."""
        return TrajectoryError(f"{self.name} is not {what}: {problem}")

    def missing_repo(self, why: str) -> TrajectoryError:
        return TrajectoryError(
            f"{self.name}: {why}; pass the repository the agent worked on with --repo URL "
            "(repo_url=... in Python), e.g. --repo https://github.com/OWNER/NAME"
        )

    def repo(self, found: str | None, why: str) -> str:
        """The repository: the caller's, else the one the trajectory names, else an error."""
        url = self.repo_url or found
        if not url:
            raise self.missing_repo(why)
        return url

    def commit(self, found: Any) -> str | None:
        """The base commit: the caller's, else the trajectory's when it is a usable sha or ref."""
        if self.base_commit:
            return self.base_commit
        if isinstance(found, str) and found != "HEAD" and _BASE_COMMIT.match(found):
            return found
        return None  # "HEAD" is what finalize does without one: the default branch's head
