"""Issue 14, item 1: no edit event can write into a checkout's ``.git`` or run a command.

The exploit: a diff whose second file is the C-quoted name ``"a/\\056git/config"`` passed the path
checks (they compared the quoted text), ``git apply`` refused it, the fuzzy ``patch`` fallback
unquoted it and wrote ``core.fsmonitor`` into ``.git/config``, and the ``git add --all`` after
the apply ran the command on the host.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from debugtrace.finalize import patching
from debugtrace.finalize.patching import apply_diff, check_paths


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "a.txt").write_text("a\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    return path


def fsmonitor_diff(config_name: str, marker: Path) -> str:
    """A valid first file, then a hunk adding ``core.fsmonitor`` to the file ``config_name``."""
    return (
        "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"
        f"--- {config_name}\n+++ {config_name.replace('a/', 'b/', 1)}\n"
        "@@ -1,3 +1,4 @@\n [core]\n \trepositoryformatversion = 0\n \tfilemode = true\n"
        f'+\tfsmonitor = "touch {marker}"\n'
    )


@pytest.fixture
def collector(settings: Settings) -> Collector:
    return Collector(
        settings=settings.model_copy(
            update={"allow_local_repos": True, "sandbox": "local", "grader": "heuristic"}
        )
    )


def test_the_c_quoted_git_config_exploit_runs_no_command(
    collector: Collector, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "r")
    marker = tmp_path / "pwned"
    diff = fsmonitor_diff('"a/\\056git/config"', marker)
    trace = collector.submit(
        {
            "developer_id": "d",
            "repo_url": str(repo),
            "bug_description": "b",
            "events": [{"type": "edit", "details": {"file": "a.txt", "diff": diff}}],
        }
    )
    done = collector.finalize(str(trace.id))
    assert not marker.exists(), "the command in core.fsmonitor ran on the host"
    [edit] = done.result.edits
    assert edit.status == "refused"
    assert "inside .git" in edit.message


@pytest.mark.parametrize(
    "name",
    [
        '"a/\\056git/config"',  # octal escape
        '"a/.gi\\164/config"',
        "a/.GIT/config",  # case-insensitive file systems
        "a/.Git/config",
        "a/.git./config",  # Windows drops trailing dots and spaces
        '"a/.git /config"',
        "a/GIT~1/config",  # the 8.3 short name
        "a/.git::$INDEX_ALLOCATION/config",  # an NTFS stream of the directory
        "a/.g\u200cit/config",  # HFS+ ignores zero-width joiners
        "a/sub/.git/config",  # any component
    ],
)
def test_every_spelling_of_git_dir_is_refused(tmp_path: Path, name: str) -> None:
    tree = make_repo(tmp_path / "r")
    marker = tmp_path / "pwned"
    diff = fsmonitor_diff(name, marker)
    reason = check_paths(tree, diff)
    assert reason is not None and "inside .git" in reason
    outcome = apply_diff(tree, "a.txt", diff)
    assert outcome.status == "refused"
    assert (tree / "a.txt").read_text() == "a\n"  # nothing of the diff was applied
    assert "fsmonitor" not in (tree / ".git" / "config").read_text()
    assert not marker.exists()


@pytest.mark.parametrize(
    "diff",
    [
        "diff --git a/a.txt b/a.txt\nsimilarity index 100%\nrename from a.txt\n"
        "rename to .git/hooks/post-index-change\n",
        'diff --git a/a.txt b/a.txt\ncopy from a.txt\ncopy to "\\056git/info/attributes"\n',
        "diff --git a/.git/config b/.git/config\nold mode 100644\nnew mode 100755\n",
        "Index: .git/config\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n",
    ],
    ids=["rename-to", "quoted-copy-to", "git-header", "index-line"],
)
def test_names_on_every_kind_of_header_line_are_checked(tmp_path: Path, diff: str) -> None:
    tree = make_repo(tmp_path / "r")
    outcome = apply_diff(tree, "a.txt", diff)
    assert outcome.status == "refused", outcome
    assert "inside .git" in outcome.message
    assert not (tree / ".git" / "hooks" / "post-index-change").exists()


@pytest.mark.parametrize(
    "diff",
    [
        "diff --git a/a.txt b/a.txt\nold mode 100644\nnew mode 120000\n",
        "diff --git a/l b/l\nindex 1234567..89abcde 120000\n--- a/l\n+++ b/l\n"
        "@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+/etc\n\\ No newline at end of file\n",
        # git reads the mode as an octal number after any whitespace: each of these is a symlink
        "diff --git a/l b/l\nnew file mode 0120000\nindex 0000000..1111111\n--- /dev/null\n"
        "+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
        "diff --git a/l b/l\nnew file mode  120000\nindex 0000000..1111111\n--- /dev/null\n"
        "+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
        "diff --git a/l b/l\nnew file mode\t120000\nindex 0000000..1111111\n--- /dev/null\n"
        "+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
        "diff --git a/l b/l\nindex 1234567..89abcde 0120000\n--- a/l\n+++ b/l\n"
        "@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+/etc\n\\ No newline at end of file\n",
        "diff --git a/m b/m\nnew file mode 160000\nindex 0000000..1111111\n",  # a gitlink
    ],
    ids=[
        "mode-change-to-symlink",
        "symlink-target-change",
        "leading-zero",
        "two-spaces",
        "tab",
        "index-line-leading-zero",
        "gitlink",
    ],
)
def test_diffs_that_make_or_change_a_symlink_are_refused(tmp_path: Path, diff: str) -> None:
    tree = make_repo(tmp_path / "r")
    outcome = apply_diff(tree, "a.txt", diff)
    assert outcome.status == "refused"
    assert "symlink" in outcome.message


CFG = '[core]\n\trepositoryformatversion = 0\n[filter "x"]\n\tclean = "touch {marker}; cat"\n'
ATTRS = "* filter=x\n"


def _retarget(tree: Path, name: str, text: str, target: str) -> str:
    """Delete a tracked file and create it again as a symlink to ``target`` (mode 0120000)."""
    n = len(text.splitlines())
    body = "".join("-" + line + "\n" for line in text.splitlines())
    return (
        f"diff --git a/{name} b/{name}\ndeleted file mode 100644\n"
        f"index {git(tree, 'rev-parse', 'HEAD:' + name)}..0000000\n"
        f"--- a/{name}\n+++ /dev/null\n@@ -1,{n} +0,0 @@\n{body}"
        f"diff --git a/{name} b/{name}\nnew file mode 0120000\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


@pytest.mark.parametrize("mode_check", ["on", "off"])
def test_a_failed_three_way_apply_never_writes_through_a_link_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode_check: str
) -> None:
    """The outside re-review's chain: files turned into symlinks to .git/config and
    .git/info/attributes, a hunk that conflicts so the 3-way apply is undone, the undo writing
    the repository's bytes through the links, then a clean filter running on the next `git add`.
    With the mode check off (a spelling it might miss), the undo and the .git check still hold."""
    if mode_check == "off":
        monkeypatch.setattr(patching, "_irregular_mode", lambda line: False)
    marker = tmp_path / "ran"
    tree = tmp_path / "r"
    tree.mkdir()
    cfg = CFG.format(marker=marker)
    (tree / "f.txt").write_text(cfg)
    (tree / "e.txt").write_text(ATTRS)
    (tree / "g.txt").write_text("a\nb\nc\n")
    (tree / "h.txt").write_text("a\nXXX\nc\n")  # its blob is the 3-way preimage of g.txt
    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", ".")
    git(tree, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    (tree / ".git" / "info" / "attributes").write_text("* -ident -filter -working-tree-encoding\n")
    config_before = (tree / ".git" / "config").read_bytes()
    preimage = git(tree, "rev-parse", "HEAD:h.txt")
    conflict = (
        f"diff --git a/g.txt b/g.txt\nindex {preimage}..2222222 100644\n"
        "--- a/g.txt\n+++ b/g.txt\n@@ -1,3 +1,3 @@\n a\n-XXX\n+YYY\n c\n"
    )
    edit = (
        _retarget(tree, "f.txt", cfg, ".git/config")
        + _retarget(tree, "e.txt", ATTRS, ".git/info/attributes")
        + conflict
    )
    first = apply_diff(tree, "f.txt", edit)
    assert first.status in ("refused", "failed")
    assert (tree / ".git" / "config").read_bytes() == config_before
    assert "filter=x" not in (tree / ".git" / "info" / "attributes").read_text()
    if not first.tainted:  # the pipeline stops at a tainted checkout; an intact one goes on
        apply_diff(tree, "g.txt", "--- a/g.txt\n+++ b/g.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
    assert not marker.exists()


def test_patch_never_runs_after_git_refused_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the path check missed a name, git's refusal is final: no fuzzy patch."""
    tree = make_repo(tmp_path / "r")
    marker = tmp_path / "pwned"
    monkeypatch.setattr(patching, "check_paths", lambda *_: None)
    outcome = apply_diff(tree, "a.txt", fsmonitor_diff('"a/\\056git/config"', marker))
    assert outcome.status != "applied"
    assert "fsmonitor" not in (tree / ".git" / "config").read_text()
    assert not marker.exists()


def test_git_runs_on_a_checkout_with_hooks_fsmonitor_and_global_config_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout whose .git was tampered with anyway, and a hostile global config: applying an
    edit (git apply, git add) runs none of their commands."""
    tree = make_repo(tmp_path / "r")
    markers = [tmp_path / f"m{i}" for i in range(3)]
    git(tree, "config", "core.fsmonitor", f"touch {markers[0]}")
    hook = tree / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\ntouch {markers[1]}\n")
    hook.chmod(0o755)
    global_config = tmp_path / "gitconfig"
    global_config.write_text(f'[core]\n\tfsmonitor = "touch {markers[2]}"\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("HOME", str(tmp_path))
    outcome = apply_diff(tree, "a.txt", "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n")
    assert outcome.status == "applied", outcome
    assert [m.name for m in markers if m.exists()] == []


def test_an_edit_that_changes_git_dir_anyway_is_refused_and_discards_the_checkout(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: .git is compared before and after each edit."""
    repo = make_repo(tmp_path / "r")
    real_run = subprocess.run

    def tool_that_writes_git_dir(cmd, *args, **kwargs):  # type: ignore[no-untyped-def]
        proc = real_run(cmd, *args, **kwargs)
        if "apply" in cmd:
            cwd = Path(kwargs["cwd"])
            (cwd / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\necho owned\n")
        return proc

    monkeypatch.setattr(patching.subprocess, "run", tool_that_writes_git_dir)
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"
    trace = collector.submit(
        {
            "developer_id": "d",
            "repo_url": str(repo),
            "bug_description": "b",
            "events": [
                {"type": "edit", "details": {"file": "a.txt", "diff": diff}},
                {"type": "edit", "details": {"file": "a.txt", "diff": diff}},
            ],
        }
    )
    done = collector.finalize(str(trace.id))
    first, second = done.result.edits
    assert first.status == "refused"
    assert "changed .git" in first.message and "hooks/pre-commit" in first.message
    assert second.status == "failed" and "checkout was discarded" in second.message
    stages = {s.name: s for s in done.result.stages}
    assert stages["apply"].status == "failed"
    assert "changed .git" in stages["apply"].message
    assert stages["tests"].status == "skipped"
