"""Open debugging sessions of the command-line workflow (``debugtrace start/exec/note/diff/stop``).

One open trace per repository: its id and the working-tree snapshot the next ``diff`` compares
against live in a small JSON file under ``<data_dir>/sessions``, so separate shell commands (and
agent harnesses calling the CLI) add to the same trace.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DebugtraceError
from .model import EditEvent

if TYPE_CHECKING:
    from .collector import Collector

__all__ = ["NoOpenSession", "Session", "SessionStore", "capture", "start"]


class NoOpenSession(DebugtraceError):
    """No trace is open for this repository (start one with ``debugtrace start``)."""


@dataclass
class Session:
    """An open trace: its id, the repository root and the snapshot the next diff starts from."""

    trace_id: str
    repo: str
    snapshot: str


class SessionStore:
    """The open sessions under ``root`` (one JSON file per repository)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, repo: Path) -> Path:
        return self.root / f"{hashlib.sha256(str(repo).encode()).hexdigest()[:16]}.json"

    def open(self, session: Session) -> None:
        """Record ``session`` as the open one of its repository (replacing any other)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(Path(session.repo))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(session)))
        os.replace(tmp, path)

    def for_repo(self, repo: Path) -> Session:
        """The open session of ``repo``; raises :class:`NoOpenSession`."""
        path = self._path(repo)
        if not path.exists():
            raise NoOpenSession(
                f"no open trace for {repo}: start one with `debugtrace start --bug TEXT`"
            )
        return Session(**json.loads(path.read_text()))

    def by_id(self, trace_id: str) -> Session | None:
        """The open session with this trace id, if any."""
        if not self.root.is_dir():
            return None
        for path in self.root.glob("*.json"):
            session = Session(**json.loads(path.read_text()))
            if session.trace_id == trace_id:
                return session
        return None

    def close(self, session: Session) -> None:
        """Forget ``session`` (the trace itself stays stored)."""
        self._path(Path(session.repo)).unlink(missing_ok=True)


def _git(repo: Path, *args: str) -> str:
    import subprocess

    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def repo_root(path: Path) -> Path:
    """The top of the git repository containing ``path``; raises when it is not in one."""
    top = _git(path, "rev-parse", "--show-toplevel")
    if not top:
        raise DebugtraceError(f"{path} is not inside a git repository")
    return Path(top)


def start(
    collector: Collector,
    store: SessionStore,
    repo: Path,
    bug: str,
    developer_id: str | None = None,
) -> Session:
    """Open a trace for the repository at ``repo`` (base: its HEAD) and remember it as the open
    session there; returns the session."""
    from .gitdiff import WorktreeSnapshots, head_commit

    root = repo_root(repo)
    base = head_commit(root)
    developer = (
        developer_id or _git(root, "config", "user.email") or os.environ.get("USER") or "unknown"
    )
    trace = collector.submit(
        {
            "developer_id": developer,
            "repo_url": _git(root, "remote", "get-url", "origin") or str(root),
            "bug_description": bug,
            "base_commit": base,
            "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD") or None,
            "metadata": {"source": "debugtrace cli"},
        }
    )
    session = Session(str(trace.id), str(root), WorktreeSnapshots(root, base).tree)
    store.open(session)
    return session


def capture(collector: Collector, store: SessionStore, session: Session) -> list[EditEvent]:
    """Record the working tree's change since the session's last snapshot, one edit event per
    file, and move the snapshot forward; returns the stored events."""
    from .gitdiff import WorktreeSnapshots

    snaps = WorktreeSnapshots(Path(session.repo), session.snapshot)
    diffs = snaps.capture()
    if not diffs:
        return []
    stored = collector.add_events(session.trace_id, [EditEvent.new(d.file, d.diff) for d in diffs])
    session.snapshot = snaps.tree
    store.open(session)
    return [e for e in stored if isinstance(e, EditEvent)]
