"""The apply stage: put a trace's edits onto a checkout, safely, the way the SWE-bench harness does.

Each diff is parsed with ``unidiff`` first. Any path that could leave the checkout is refused:
absolute paths, ``..``, anything inside ``.git`` (hooks would run on the host), a path through a
symlink, or a diff that creates a symlink. Then ``git apply`` is tried, then ``git apply --3way``,
then a fuzzy ``patch``; the first that works is recorded as the method. A context or removed line
whose secret was redacted at ingestion is first matched against the checkout (the placeholder as a
wildcard) and put back as it is there, so the diff still applies.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from debugtrace.errors import PatchError

__all__ = ["ApplyOutcome", "apply_diff", "diff_paths", "normalize_diff"]

METHODS = ("git-apply", "git-apply-3way", "patch-fuzzy")


@dataclass(frozen=True)
class ApplyOutcome:
    """How one edit fared: applied (with the method), failed (with the tools' words) or refused."""

    status: Literal["applied", "failed", "refused"]
    method: str | None
    message: str


def normalize_diff(file: str, diff: str) -> str:
    """The diff with a final newline, and file headers taken from ``file`` if it has only hunks."""
    if not diff.endswith("\n"):
        diff += "\n"
    has_headers = any(line.startswith(("--- ", "diff --git ")) for line in diff.splitlines()[:50])
    if not has_headers and diff.lstrip().startswith("@@"):
        diff = f"--- a/{file}\n+++ b/{file}\n{diff}"
    return diff


def diff_paths(diff: str) -> list[str]:
    """Every path the diff reads or writes, as written (``a/``/``b/`` prefixes removed).

    Raises ``ValueError`` with unidiff's message when the text is not a unified diff.
    """
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise PatchError(f"not a unified diff: {exc}") from None
    if not len(patch):
        raise PatchError("not a unified diff: no file headers or hunks found")
    paths: list[str] = []
    for pf in patch:
        for name in (pf.source_file, pf.target_file):
            if name and name != "/dev/null":
                paths.append(name[2:] if name[:2] in ("a/", "b/") else name)
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            parts = line[len("diff --git ") :].split(" b/", 1)
            paths += [parts[0].removeprefix("a/"), *parts[1:]]
    return paths


def check_paths(worktree: Path, diff: str) -> str | None:
    """Why the diff must not be applied to ``worktree``, or None when every path stays inside."""
    if "\nnew file mode 120000" in diff or "\nnew mode 120000" in diff:
        return "refused: the diff creates a symlink"
    root = worktree.resolve()
    for raw in diff_paths(diff):
        path = PurePosixPath(raw)
        if path.is_absolute() or raw.startswith("~"):
            return f"refused: absolute path {raw!r}"
        if ".." in path.parts:
            return f"refused: path {raw!r} leaves the repository"
        if ".git" in path.parts:
            return f"refused: path {raw!r} is inside .git"
        # Every existing component must be a real directory/file inside the checkout.
        current = root
        for part in path.parts:
            current = current / part
            if current.is_symlink():
                return f"refused: path {raw!r} goes through the symlink {part!r}"
            if not current.exists():
                break
    return None


def _strip_level(diff: str) -> str:
    for line in diff.splitlines():
        if line.startswith(("--- ", "+++ ")) and not line.endswith("/dev/null"):
            name = line[4:].split("\t")[0]
            return "1" if name.startswith(("a/", "b/")) else "0"
    return "1"


def _run(cmd: list[str], cwd: Path, diff: str) -> tuple[bool, str]:
    proc = subprocess.run(
        cmd, cwd=cwd, input=diff, capture_output=True, text=True, errors="replace", timeout=120
    )
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def apply_diff(worktree: Path, file: str, diff: str) -> ApplyOutcome:
    """Apply one edit to ``worktree``; returns how it went (never raises on a bad diff)."""
    diff = normalize_diff(file, diff)
    try:
        refusal = check_paths(worktree, diff)
    except ValueError as exc:
        return ApplyOutcome("failed", None, str(exc))
    if refusal:
        return ApplyOutcome("refused", None, refusal)
    if "[REDACTED:" in diff:
        # Secrets on context lines were redacted at ingestion: match them against the checkout.
        from debugtrace.ingest.redact import restore_context

        diff = restore_context(diff, lambda path: _source_lines(worktree, path))
    p = _strip_level(diff)
    touched = [worktree / q for q in dict.fromkeys(diff_paths(diff))]
    saved = {q: q.read_bytes() for q in touched if q.is_file()}
    errors = []
    attempts: list[tuple[str, list[str]]] = [
        ("git-apply", ["git", "apply", f"-p{p}", "--whitespace=nowarn", "-"]),
        ("git-apply-3way", ["git", "apply", f"-p{p}", "--3way", "--whitespace=nowarn", "-"]),
    ]
    if shutil.which("patch"):
        attempts.append(
            (
                "patch-fuzzy",
                [
                    "patch",
                    f"-p{p}",
                    "--batch",
                    "--forward",
                    "--fuzz=3",
                    "--no-backup-if-mismatch",
                    "--reject-file=-",
                    "--silent",
                ],
            )
        )
    for method, cmd in attempts:
        if method == "patch-fuzzy":
            ok, _ = _run([*cmd, "--dry-run"], worktree, diff)
            if not ok:
                errors.append(f"{method}: does not apply")
                continue
        ok, msg = _run(cmd, worktree, diff)
        if ok:
            # Stage the result so the next edit's --3way compares against what is there now.
            if (worktree / ".git").exists():
                _run(["git", "add", "--all"], worktree, "")
            return ApplyOutcome("applied", method, msg)
        errors.append(f"{method}: {msg.splitlines()[0] if msg else 'failed'}")
        _restore(touched, saved)
    return ApplyOutcome("failed", None, "; ".join(errors))


def _source_lines(worktree: Path, path: str) -> list[str] | None:
    # The path was checked by check_paths: it stays inside the checkout.
    file = worktree / path
    if not file.is_file():
        return None
    return file.read_text(errors="surrogateescape").split("\n")


def _restore(touched: list[Path], saved: dict[Path, bytes]) -> None:
    # A failed 3-way apply can leave conflict markers; put the files back as they were.
    for path in touched:
        if path in saved:
            path.write_bytes(saved[path])
        elif path.is_file() and not path.is_symlink():
            path.unlink()
