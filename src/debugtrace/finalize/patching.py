"""The apply stage: put a trace's edits onto a checkout, safely, the way the SWE-bench harness does.

A diff is untrusted text, and three tools read its file names (git, GNU ``patch``, us), so every
name is checked as the tools will read it:

- every name of every ``---``/``+++``/``diff --git``/``rename``/``copy``/``Index:`` line is
  C-unquoted (``"a/\\056git"`` is ``a/.git``) and refused when absolute, through ``..``, through a
  symlink of the checkout, or naming ``.git`` in any spelling a file system may map to it
  (``.GIT``, ``.git.``, ``.git ``, ``GIT~1``, ``.git::$INDEX_ALLOCATION``, with ignorable
  Unicode code points); a diff that creates a symlink, or changes one, is refused;
- ``git apply`` is tried, then ``git apply --3way``; the fuzzy GNU ``patch`` runs only when git
  said the hunks do not apply (never when it refused a path), and it reads a diff we wrote from
  the parsed hunks (plain names, no git headers, unified format forced, no version control);
- every git call runs with hooks and fsmonitor off and no system/global config;
- ``.git`` (config, hooks, info, refs...: everything but the index and the objects) is compared
  before and after: an edit that changed it is refused and the checkout must be thrown away.

A context or removed line whose secret was redacted at ingestion is first matched against the
checkout (the placeholder as a wildcard) and put back as it is there, so the diff still applies;
each file is read once per edit and matched through an index (linear in diff plus file).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from debugtrace.errors import PatchError
from debugtrace.finalize.workspace import SAFE_GIT_CONFIG, checkout_env, checkout_git
from debugtrace.gitdiff import DiffSection, parse_sections

__all__ = [
    "ApplyOutcome",
    "apply_diff",
    "check_paths",
    "diff_paths",
    "git_dir_fingerprint",
    "is_git_dir_name",
    "normalize_diff",
]

METHODS = ("git-apply", "git-apply-3way", "patch-fuzzy")
TOOL_TIMEOUT_S = 120.0
"""Longest one git or patch call may take (less when the stage's time budget is nearer)."""
MAX_SOURCE_BYTES = 64 * 1024**2
"""Files larger than this are not read to restore redacted context lines."""

# Lines that make git (or patch) create or change a symlink.
_MODE_LINE = re.compile(r"^(new file mode|new mode|index [0-9a-fA-F]+\.\.[0-9a-fA-F]+)(.*)$")
"""A header line that gives the mode a file will have. git reads the mode as an octal number after
any whitespace (``0120000`` and ``  120000`` are symlinks too), so it is parsed, not matched."""


def _irregular_mode(line: str) -> bool:
    """Whether ``line`` gives a file a mode other than a regular file's (a symlink, a gitlink,
    or anything git might read as one)."""
    m = _MODE_LINE.match(line)
    if m is None:
        return False
    value = m.group(2).strip()
    if not value:
        return not m.group(1).startswith("index")  # "index a..b" alone names no mode
    try:
        mode = int(value, 8)
    except ValueError:
        return True
    return mode & 0o170000 != 0o100000


# Code points HFS+ ignores in names (git's is_hfs_dotgit list) and the BOM.
_IGNORABLE = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
_DOES_NOT_APPLY = re.compile(r"^error: (?:patch failed: .*:\d+|.*: patch does not apply)$")


@dataclass(frozen=True)
class ApplyOutcome:
    """How one edit fared: applied (with the method), failed (with the tools' words) or refused.

    ``tainted`` means the edit changed the checkout's ``.git``: nothing may run on it any more."""

    status: Literal["applied", "failed", "refused"]
    method: str | None
    message: str
    tainted: bool = False


def normalize_diff(file: str, diff: str) -> str:
    """The diff with a final newline, and file headers taken from ``file`` if it has only hunks."""
    if not diff.endswith("\n"):
        diff += "\n"
    has_headers = any(line.startswith(("--- ", "diff --git ")) for line in diff.splitlines()[:50])
    if not has_headers and diff.lstrip().startswith("@@"):
        diff = f"--- a/{file}\n+++ b/{file}\n{diff}"
    return diff


def _sections(diff: str) -> list[DiffSection]:
    """The diff's files; raises :class:`PatchError` when it is not a unified diff."""
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise PatchError(f"not a unified diff: {exc}") from None
    if not len(patch):
        raise PatchError("not a unified diff: no file headers or hunks found")
    try:
        return parse_sections(diff)
    except ValueError as exc:
        raise PatchError(f"not a unified diff: {exc}") from None


def _strip_level(sections: list[DiffSection]) -> int:
    for sec in sections:
        for name in (sec.old, sec.new):
            if name is not None:
                return 1 if name.startswith(("a/", "b/")) else 0
    return 1


def _strip(name: str, level: int) -> str:
    return name.split("/", level)[-1] if level and "/" in name else name


def diff_paths(diff: str) -> list[str]:
    """Every path the diff names, unquoted, ``a/``/``b/`` prefixes removed (the strip level
    ``git apply`` is given). Raises :class:`PatchError` when the text is not a unified diff."""
    sections = _sections(diff)
    level = _strip_level(sections)
    return [_strip(n, level) for sec in sections for n in sec.names if n != "/dev/null"]


def is_git_dir_name(component: str) -> bool:
    """Whether a path component names ``.git`` on some file system: any case, trailing dots or
    spaces (Windows), an NTFS stream suffix, the 8.3 short name ``GIT~1``, HFS+-ignorable code
    points."""
    name = unicodedata.normalize("NFC", component.translate(_IGNORABLE)).casefold()
    name = name.split(":", 1)[0].rstrip(". ")
    return name == ".git" or re.fullmatch(r"git~\d+", name) is not None


def _name_refusal(raw: str) -> str | None:
    if not raw:
        return "refused: an empty file name"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return f"refused: file name {raw!r} holds control characters"
    if raw.startswith(("/", "~")):
        return f"refused: absolute path {raw!r}"
    if ".." in raw.split("/"):
        return f"refused: path {raw!r} leaves the repository"
    if any(is_git_dir_name(part) for part in re.split(r"[/\\]", raw)):
        return f"refused: path {raw!r} is inside .git"
    return None


def check_paths(worktree: Path, diff: str) -> str | None:
    """Why the diff must not be applied to ``worktree``, or None when every name it gives stays
    inside the checkout and out of ``.git``. Raises :class:`PatchError` on a non-diff."""
    for line in diff.split("\n"):
        if _irregular_mode(line):
            return "refused: the diff creates or changes a symlink or another non-regular file"
    sections = _sections(diff)
    level = _strip_level(sections)
    root = worktree.resolve()
    for sec in sections:
        for raw in sec.names:
            if raw == "/dev/null":
                continue
            # As written, and as git reads it after stripping the prefix ("a//etc" is "/etc").
            refusal = _name_refusal(raw) or _name_refusal(_strip(raw, level))
            if refusal:
                return refusal
            # Every existing component must be a real directory or file inside the checkout.
            current = root
            for part in PurePosixPath(_strip(raw, level)).parts:
                current = current / part
                if current.is_symlink():
                    return f"refused: path {raw!r} goes through the symlink {part!r}"
                if not current.exists():
                    break
    return None


def git_dir_fingerprint(worktree: Path) -> dict[str, str]:
    """What ``worktree/.git`` holds, for comparison: every entry's type, mode and content hash,
    except the index and the loose objects (``git apply --3way`` and ``git add`` write those)."""
    root = worktree / ".git"
    if root.is_symlink() or not root.is_dir():
        return {".git": "missing or not a directory"}
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == "objects":
            dirnames[:] = [d for d in dirnames if not re.fullmatch(r"[0-9a-f]{2}", d)]
        for name in (*dirnames, *filenames):
            key = os.path.normpath(os.path.join(rel, name))
            if key == "index":
                continue
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[key] = "link " + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                out[key] = f"{st.st_mode:o} {digest}"
            else:
                out[key] = f"{st.st_mode:o}"
    return out


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _run(
    cmd: list[str], cwd: Path, stdin: str, timeout: float, env: dict[str, str]
) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f}s"
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def _patch_env() -> dict[str, str]:
    # GNU patch reads PATCH_GET, POSIXLY_CORRECT, VERSION_CONTROL...: give it none of them.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}


def _plain_name(name: str) -> bool:
    # A name GNU patch reads back unchanged without quoting.
    return name.isprintable() and not any(c.isspace() or c in '"\\' for c in name)


def _canonical(sections: list[DiffSection], level: int, worktree: Path) -> str | None:
    """The diff rewritten from its parsed hunks for GNU patch, or None when it is not only
    changes to existing regular files with plain names (patch is then not tried)."""
    out: list[str] = []
    for sec in sections:
        extra = [e for e in sec.extended or () if not e.startswith("index ")]
        if extra or sec.malformed or not sec.hunks or sec.old is None or sec.new is None:
            return None
        old, new = _strip(sec.old, level), _strip(sec.new, level)
        target = worktree / old
        if old != new or not _plain_name(old) or target.is_symlink() or not target.is_file():
            return None
        out.append(f"--- a/{old}\n+++ b/{old}\n")
        for h in sec.hunks:
            out.append(f"@@ -{h.old_start},{h.old_count} +{h.new_start},{h.new_count} @@\n")
            for line in h.lines:
                if line.startswith("\\"):
                    out.append("\\ No newline at end of file\n")
                else:
                    out.append((line or " ") + "\n")
    return "".join(out) or None


def apply_diff(
    worktree: Path, file: str, diff: str, *, deadline: float | None = None
) -> ApplyOutcome:
    """Apply one edit to ``worktree``; returns how it went (never raises on a bad diff).

    ``deadline`` (a :func:`time.monotonic` value) bounds the tools' run time: past it, the edit
    fails with a message saying so."""
    diff = normalize_diff(file, diff)
    try:
        refusal = check_paths(worktree, diff)
        sections = _sections(diff)
    except PatchError as exc:
        return ApplyOutcome("failed", None, str(exc))
    if refusal:
        return ApplyOutcome("refused", None, refusal)
    level = _strip_level(sections)
    names = [_strip(n, level) for sec in sections for n in sec.names if n != "/dev/null"]
    touched = [worktree / q for q in dict.fromkeys(names)]
    if "[REDACTED:" in diff:
        # Secrets on context lines were redacted at ingestion: match them against the checkout.
        from debugtrace.ingest.redact import restore_context

        allowed = {str(PurePosixPath(q)) for q in names}
        diff = restore_context(
            diff,
            lambda path: _source_lines(worktree, path) if path in allowed else None,
        )
        if check_paths(worktree, diff):  # pragma: no cover - restoring touches bodies only
            return ApplyOutcome("refused", None, "refused: restored diff names other paths")
    saved = {
        q: (q.read_bytes(), q.stat().st_mode & 0o777)
        for q in touched
        if q.is_file() and not q.is_symlink()
    }
    has_git = (worktree / ".git").is_dir()
    if has_git:
        env = checkout_env()

        def git(*args: str) -> list[str]:
            return checkout_git(worktree, *args)
    else:
        env = {**checkout_env(), "GIT_CEILING_DIRECTORIES": str(worktree.resolve().parent)}

        def git(*args: str) -> list[str]:
            return ["git", *SAFE_GIT_CONFIG, *args]

    guard = git_dir_fingerprint(worktree) if has_git else None

    def tainted() -> ApplyOutcome | None:
        if guard is None:
            return None
        changed = _changed(guard, git_dir_fingerprint(worktree))
        if not changed:
            return None
        _restore(worktree, touched, saved)
        return ApplyOutcome(
            "refused",
            None,
            f"refused: applying the edit changed .git ({', '.join(changed[:5])}); "
            "the checkout is discarded",
            tainted=True,
        )

    def timeout() -> float | None:
        if deadline is None:
            return TOOL_TIMEOUT_S
        left = deadline - time.monotonic()
        return min(TOOL_TIMEOUT_S, left) if left > 0 else None

    errors: list[str] = []
    attempts: list[tuple[str, list[str], str, dict[str, str]]] = [
        ("git-apply", git("apply", f"-p{level}", "--whitespace=nowarn", "-"), diff, env),
        (
            "git-apply-3way",
            git("apply", f"-p{level}", "--3way", "--whitespace=nowarn", "-"),
            diff,
            env,
        ),
    ]
    patch: tuple[str, list[str], str, dict[str, str]] | str = ""
    for n, (method, cmd, stdin, cmd_env) in enumerate(attempts):
        budget = timeout()
        if budget is None:
            errors.append(f"{method}: not tried, the apply stage's time budget ran out")
            return ApplyOutcome("failed", None, "; ".join(errors))
        ok, msg = _run(cmd, worktree, stdin, budget, cmd_env)
        if (bad := tainted()) is not None:
            return bad
        if ok:
            return _staged(worktree, method, msg, git, env, timeout(), tainted)
        errors.append(f"{method}: {msg.splitlines()[0] if msg else 'failed'}")
        _restore(worktree, touched, saved)
        if (bad := tainted()) is not None:  # a half-applied attempt, undone: .git still as it was?
            return bad
        if n == 0:
            # Decided on git's first answer: a refused path must never reach patch.
            patch = _patch_attempt(msg, sections, level, worktree)
        if n == 1 and not isinstance(patch, str):
            attempts.append(patch)
    if isinstance(patch, str) and patch:
        errors.append(f"patch-fuzzy: {patch}")
    return ApplyOutcome("failed", None, "; ".join(errors))


def _patch_attempt(
    git_message: str, sections: list[DiffSection], level: int, worktree: Path
) -> tuple[str, list[str], str, dict[str, str]] | str:
    """The fuzzy ``patch`` attempt, or why it must not run: only when every error git gave is
    "patch does not apply" (never after a refused path) and the diff can be rewritten plainly."""
    if not shutil.which("patch"):
        return ""
    errors = [line for line in git_message.splitlines() if line.startswith("error:")]
    if not errors or not all(_DOES_NOT_APPLY.match(line) for line in errors):
        return "not tried: git refused the diff for another reason than its content"
    canonical = _canonical(sections, level, worktree)
    if canonical is None:
        return "not tried: the diff does more than change existing files"
    cmd = [
        "patch",
        "-p1",
        "--unified",  # never read as an ed script (those can run commands) or a context diff
        "--get=0",  # never check files out of RCS/SCCS/ClearCase
        "--batch",
        "--forward",
        "--fuzz=3",
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "--silent",
    ]
    dry, _ = _run([*cmd, "--dry-run"], worktree, canonical, TOOL_TIMEOUT_S, _patch_env())
    if not dry:
        return "does not apply"
    return ("patch-fuzzy", cmd, canonical, _patch_env())


def _staged(
    worktree: Path,
    method: str,
    message: str,
    git: Callable[..., list[str]],
    env: dict[str, str],
    budget: float | None,
    tainted: Callable[[], ApplyOutcome | None],
) -> ApplyOutcome:
    # Stage the result so the next edit's --3way compares against what is there now.
    if (worktree / ".git").is_dir():
        _run(git("add", "--all"), worktree, "", budget or 10.0, env)
        if (bad := tainted()) is not None:
            return bad
    return ApplyOutcome("applied", method, message)


def _source_lines(worktree: Path, path: str) -> list[str] | None:
    """The lines of a checked path of the checkout, or None (missing, a symlink, too large)."""
    file = worktree / path
    if file.is_symlink() or not file.is_file() or file.stat().st_size > MAX_SOURCE_BYTES:
        return None
    return file.read_text(errors="surrogateescape").split("\n")


def _restore(worktree: Path, touched: list[Path], saved: dict[Path, tuple[bytes, int]]) -> None:
    """Put the touched files back as they were after a failed attempt (a 3-way apply can leave
    conflict markers, and files it already replaced).

    Never through a link: what the attempt left at a path is removed first, and the saved bytes
    are written to a new file (``O_EXCL | O_NOFOLLOW``) whose folder is inside the checkout and
    not in ``.git`` — a failed attempt may have turned a file into a symlink to anywhere."""
    root = worktree.resolve()
    for path in touched:
        parent = path.parent.resolve()
        inside = parent == root or root in parent.parents
        if not inside or any(
            is_git_dir_name(p) for p in (*parent.relative_to(root).parts, path.name)
        ):
            continue  # the names were checked; never touch .git or what a link leads to
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        if path not in saved:
            continue
        data, mode = saved[path]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, mode, follow_symlinks=False)  # the umask may have cut the mode
