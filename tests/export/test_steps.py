"""Dead-end steps: the edits a fine-tuning row should not teach (``export.steps.dead_ends``).

Read top to bottom: a session with a wrong attempt, reverted, then the real fix; what counts as
undoing an edit (and what does not); new, deleted and renamed files, CRLF and missing newlines;
what finalize's per-edit replay adds; properties over random edits.
"""

from __future__ import annotations

import difflib
import itertools
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from debugtrace.export.steps import dead_ends, instrumentation, undone_edits
from debugtrace.gitdiff import WorktreeSnapshots
from debugtrace.model import EditEvent, Trace
from debugtrace.results import EditResult, TraceResult, Validation
from debugtrace.testing import sample_trace

# -- the story: an off-by-one in moving_average ------------------------------------------------
#
# stats.py at the base commit:
#
#     def moving_average(xs, n):
#         """The mean of each window of n consecutive values."""
#         if n <= 0:
#             raise ValueError("n must be positive")
#         return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]
#
# moving_average([1, 2, 3], 3) returns [] instead of [2.0]: the last window is missing.

WRONG_SLICE = '''\
--- a/stats.py
+++ b/stats.py
@@ -2,4 +2,4 @@ def moving_average(xs, n):
     """The mean of each window of n consecutive values."""
     if n <= 0:
         raise ValueError("n must be positive")
-    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]
+    return [sum(xs[i:i + n + 1]) / n for i in range(len(xs) - n)]
'''

REVERT_SLICE = '''\
--- a/stats.py
+++ b/stats.py
@@ -2,4 +2,4 @@ def moving_average(xs, n):
     """The mean of each window of n consecutive values."""
     if n <= 0:
         raise ValueError("n must be positive")
-    return [sum(xs[i:i + n + 1]) / n for i in range(len(xs) - n)]
+    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]
'''

FIX_RANGE = '''\
--- a/stats.py
+++ b/stats.py
@@ -2,4 +2,4 @@ def moving_average(xs, n):
     """The mean of each window of n consecutive values."""
     if n <= 0:
         raise ValueError("n must be positive")
-    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]
+    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n + 1)]
'''

REGRESSION_TEST = """\
--- a/tests/test_stats.py
+++ b/tests/test_stats.py
@@ -8,3 +8,7 @@ def test_moving_average():

 def test_moving_average_rejects_zero():
     with pytest.raises(ValueError):
         moving_average([1, 2], 0)
+
+
+def test_moving_average_keeps_the_last_window():
+    assert moving_average([1, 2, 3], 3) == [2.0]
"""


def event(kind: str, **details: Any) -> dict[str, Any]:
    return {"type": kind, "details": details}


def edit(file: str, diff: str) -> dict[str, Any]:
    return event("edit", file=file, diff=diff)


def trace(*events: dict[str, Any], result: TraceResult | None = None) -> Trace:
    """A stored trace: events numbered 1, 2, ... as storage numbers them."""
    t = Trace.model_validate(
        {
            "id": "t-stats",
            "developer_id": "agent-7",
            "repo_url": "https://github.com/example/stats",
            "bug_description": "moving_average drops the last window",
            "events": [{**ev, "seq": i} for i, ev in enumerate(events, start=1)],
        }
    )
    if result is not None:
        t.result = result
    return t


def session(result: TraceResult | None = None) -> Trace:
    return trace(
        event("reasoning", text="the slice stops one short", reasoning_type="hypothesis"),
        event("command", command="pytest -q tests/test_stats.py", exit_code=1, output="1 failed"),
        edit("stats.py", WRONG_SLICE),  # 3: the wrong attempt
        event("command", command="pytest -q tests/test_stats.py", exit_code=1, output="2 failed"),
        event("reasoning", text="worse: the slice was right, the range is short"),
        edit("stats.py", REVERT_SLICE),  # 6: back to the base line
        edit("stats.py", FIX_RANGE),  # 7: the fix
        edit("tests/test_stats.py", REGRESSION_TEST),  # 8: its regression test
        event("command", command="pytest -q tests/test_stats.py", exit_code=0, output="3 passed"),
        result=result,
    )


def test_a_reverted_attempt_is_a_dead_end_and_the_fix_is_not() -> None:
    # Edit 6 deletes the line edit 3 wrote and puts back the line edit 3 deleted: edit 3 was a
    # dead end. The revert itself is kept (its line is what the fix then changes), as are the
    # fix and the regression test, which nothing undid.
    assert dead_ends(session()) == {3: "undone by edit #6"}


def test_edits_of_different_files_are_never_dead_ends_by_replay() -> None:
    # The fix and its regression test: no edit can undo the other, and the diffs are not even
    # replayed (the common trace costs next to nothing).
    t = trace(edit("stats.py", FIX_RANGE), edit("tests/test_stats.py", REGRESSION_TEST))
    assert dead_ends(t) == {}


def test_commands_are_never_reported() -> None:
    # Running the tests after the wrong attempt is what showed it was wrong: worth teaching.
    ends = dead_ends(session())
    assert all(seq in (3, 6, 7, 8) for seq in ends)


# -- what counts as undoing ----------------------------------------------------------------------


def test_undoing_may_take_several_edits_the_last_one_is_named() -> None:
    add_two = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,2 +1,4 @@\n"
        " def moving_average(xs, n):\n"
        "+    xs = list(xs)\n"
        "+    n = int(n)\n"
        '     """The mean of each window of n consecutive values."""\n'
    )
    drop_first = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,3 +1,2 @@\n"
        " def moving_average(xs, n):\n"
        "-    xs = list(xs)\n"
        "     n = int(n)\n"
    )
    drop_second = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,3 +1,2 @@\n"
        " def moving_average(xs, n):\n"
        "-    n = int(n)\n"
        '     """The mean of each window of n consecutive values."""\n'
    )
    t = trace(
        edit("stats.py", add_two), edit("stats.py", drop_first), edit("stats.py", drop_second)
    )
    # The debugging prints went in with edit 1 and were gone after edit 3. Edits 2 and 3 only
    # deleted lines nobody put back: they stay.
    assert dead_ends(t) == {1: "undone by edit #3"}


def test_a_fix_reverted_and_written_again_is_not_a_dead_end_the_revert_is() -> None:
    # Fix (1), revert (2), the same fix again (3): the line edit 3 writes back is edit 1's again,
    # so edit 1 lives in the final code. The revert is the step not to teach.
    t = trace(
        edit("stats.py", FIX_RANGE),
        edit("stats.py", reverse(FIX_RANGE)),
        edit("stats.py", FIX_RANGE),
    )
    assert dead_ends(t) == {2: "undone by edit #3"}


def test_code_moved_elsewhere_is_not_a_dead_end() -> None:
    # Edit 1 adds a helper above moving_average; edit 2 moves it below. Edit 1's lines were
    # deleted where it wrote them, but its code is still in the file: not a dead end.
    add_helper = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,2 +1,6 @@\n"
        "+def _windows(xs, n):\n"
        "+    return len(xs) - n + 1\n"
        "+\n"
        "+\n"
        " def moving_average(xs, n):\n"
        '     """The mean of each window of n consecutive values."""\n'
    )
    move_helper = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,9 +1,9 @@\n"
        "-def _windows(xs, n):\n"
        "-    return len(xs) - n + 1\n"
        "-\n"
        "-\n"
        " def moving_average(xs, n):\n"
        '     """The mean of each window of n consecutive values."""\n'
        "     if n <= 0:\n"
        '         raise ValueError("n must be positive")\n'
        "     return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]\n"
        "+\n"
        "+\n"
        "+def _windows(xs, n):\n"
        "+    return len(xs) - n + 1\n"
    )
    assert dead_ends(trace(edit("stats.py", add_helper), edit("stats.py", move_helper))) == {}


def test_a_partial_undo_is_not_a_dead_end() -> None:
    add_two = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -1,2 +1,4 @@\n"
        " def moving_average(xs, n):\n"
        "+    xs = list(xs)\n"
        "+    assert n <= len(xs)\n"
        '     """The mean of each window of n consecutive values."""\n'
    )
    drop_assert = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -2,3 +2,2 @@\n"
        "     xs = list(xs)\n"
        "-    assert n <= len(xs)\n"
        '     """The mean of each window of n consecutive values."""\n'
    )
    # ``xs = list(xs)`` survives: edit 1 still contributes to the final code.
    assert dead_ends(trace(edit("stats.py", add_two), edit("stats.py", drop_assert))) == {}


def test_deleted_lines_must_come_back_for_an_undo() -> None:
    # Edit 2 deletes edit 1's line but writes a third version instead of the base line: edit 1's
    # deletion was overwritten, not undone. Edit 1 is no dead end (nor is edit 2, the fix).
    third = """\
--- a/stats.py
+++ b/stats.py
@@ -5 +5 @@
-    return [sum(xs[i:i + n + 1]) / n for i in range(len(xs) - n)]
+    return [sum(xs[i:i + n]) / n for i in range(len(xs) + 1 - n)]
"""
    assert dead_ends(trace(edit("stats.py", WRONG_SLICE), edit("stats.py", third))) == {}


def test_a_diff_that_contradicts_the_replay_proves_nothing() -> None:
    # Edit 2's context says line 5 holds something edit 1 did not leave there (a diff recorded
    # against another state of the file): replay cannot follow the file, so nothing in it is
    # called a dead end.
    stale = REVERT_SLICE.replace("n must be positive", "n must be > 0")
    assert dead_ends(trace(edit("stats.py", WRONG_SLICE), edit("stats.py", stale))) == {}


def test_a_diff_without_headers_is_read_as_a_diff_of_the_edit_file() -> None:
    def body(diff: str) -> str:
        return diff.split("\n", 2)[2]  # hunks only, as some agents record them

    t = trace(edit("stats.py", body(WRONG_SLICE)), edit("stats.py", body(REVERT_SLICE)))
    assert dead_ends(t) == {1: "undone by edit #2"}


def test_a_diff_that_does_not_parse_is_never_a_dead_end() -> None:
    t = trace(edit("stats.py", "rewrite the function"), edit("stats.py", "put it back"))
    assert dead_ends(t) == {}


# -- new, deleted and renamed files; line endings ------------------------------------------------

NEW_HELPER = """\
diff --git a/windows.py b/windows.py
new file mode 100644
index 0000000..3f1c2aa
--- /dev/null
+++ b/windows.py
@@ -0,0 +1,3 @@
+def windows(xs, n):
+    \"\"\"Every run of n consecutive values, the last one included.\"\"\"
+    return [xs[i:i + n] for i in range(len(xs) - n + 1)]
"""

DELETE_HELPER = """\
diff --git a/windows.py b/windows.py
deleted file mode 100644
index 3f1c2aa..0000000
--- a/windows.py
+++ /dev/null
@@ -1,3 +0,0 @@
-def windows(xs, n):
-    \"\"\"Every run of n consecutive values, the last one included.\"\"\"
-    return [xs[i:i + n] for i in range(len(xs) - n + 1)]
"""


def test_a_new_file_deleted_later_is_a_dead_end() -> None:
    t = trace(
        edit("windows.py", NEW_HELPER),
        edit("stats.py", FIX_RANGE),
        edit("windows.py", DELETE_HELPER),
    )
    assert dead_ends(t) == {1: "undone by edit #3"}


def test_a_file_deleted_then_written_back_makes_the_deletion_the_dead_end() -> None:
    t = trace(
        edit("windows.py", NEW_HELPER),
        edit("windows.py", DELETE_HELPER),
        edit("windows.py", NEW_HELPER),
    )
    # Edit 2 deleted the new file, edit 3 wrote it back: the deletion was the dead end. Lines
    # written back are their author's again, so edit 1 (whose helper is in the final tree) is
    # not one, and edit 3, which only put edit 1's lines back, is not either.
    assert dead_ends(t) == {2: "undone by edit #3"}


RENAME = """\
diff --git a/stats.py b/statistics_utils.py
similarity index 100%
rename from stats.py
rename to statistics_utils.py
"""

RENAME_BACK = """\
diff --git a/statistics_utils.py b/stats.py
similarity index 100%
rename from statistics_utils.py
rename to stats.py
"""


def test_a_rename_renamed_back_is_a_dead_end_and_edits_follow_the_file() -> None:
    renamed_fix = FIX_RANGE.replace("a/stats.py", "a/statistics_utils.py").replace(
        "b/stats.py", "b/statistics_utils.py"
    )
    t = trace(
        edit("stats.py", RENAME),
        edit("statistics_utils.py", renamed_fix),  # the fix, made under the new name
        edit("statistics_utils.py", RENAME_BACK),
    )
    assert dead_ends(t) == {1: "undone by edit #3"}


def test_a_rename_never_undone_is_kept() -> None:
    assert dead_ends(trace(edit("stats.py", RENAME))) == {}


def test_crlf_lines_and_missing_final_newlines_are_compared_exactly() -> None:
    crlf = "--- a/win.txt\n+++ b/win.txt\n@@ -1,2 +1,2 @@\n title\r\n-old\r\n+new\r\n"
    back = "--- a/win.txt\n+++ b/win.txt\n@@ -1,2 +1,2 @@\n title\r\n-new\r\n+old\r\n"
    assert dead_ends(trace(edit("win.txt", crlf), edit("win.txt", back))) == {
        1: "undone by edit #2"
    }

    # Putting back the line with LF instead of CRLF is not putting it back.
    lf = back.replace("+old\r\n", "+old\n")
    assert dead_ends(trace(edit("win.txt", crlf), edit("win.txt", lf))) == {}

    # Nor is adding a final newline the last line lacked.
    no_eol = "--- a/v.txt\n+++ b/v.txt\n@@ -1 +1 @@\n-1.0\n\\ No newline at end of file\n+1.1\n"
    eol = "--- a/v.txt\n+++ b/v.txt\n@@ -1 +1 @@\n-1.1\n+1.0\n"
    assert dead_ends(trace(edit("v.txt", no_eol), edit("v.txt", eol))) == {}
    exact = eol.replace("+1.0\n", "+1.0\n\\ No newline at end of file\n")
    assert dead_ends(trace(edit("v.txt", no_eol), edit("v.txt", exact))) == {1: "undone by edit #2"}


def test_an_imported_final_patch_restates_the_session_and_is_not_replayed() -> None:
    # SWE-agent, OpenHands...: the submission is the net diff against the base, recorded after
    # the edits (``details.final_patch``). Replaying it on top of them would read as a diff of
    # another state of the file; it is left out, and the edits before it keep their verdicts.
    final = {
        **edit("stats.py", FIX_RANGE),
        "details": {"file": "stats.py", "diff": FIX_RANGE, "final_patch": True},
    }
    t = trace(
        edit("stats.py", WRONG_SLICE),
        edit("stats.py", REVERT_SLICE),
        edit("stats.py", FIX_RANGE),
        final,
    )
    assert dead_ends(t) == {1: "undone by edit #2"}


# -- on the diffs debugtrace records ---------------------------------------------------------------


def test_on_diffs_captured_from_a_real_working_tree(tmp_path: Path) -> None:
    # The shell and pytest capture diff the working tree between steps with git (``diff --git``,
    # ``index`` lines, no rename detection: a rename is a deletion and a new file). A session:
    # the wrong attempt and its revert, the fix, a helper file renamed and renamed back, a CRLF
    # file changed and changed back.
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    stats = tmp_path / "stats.py"
    base = (
        "def moving_average(xs, n):\n"
        '    """The mean of each window of n consecutive values."""\n'
        "    if n <= 0:\n"
        '        raise ValueError("n must be positive")\n'
        "    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]\n"
    )
    stats.write_text(base)
    (tmp_path / "notes.txt").write_bytes(b"windows\r\nof n values\r\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    snaps = WorktreeSnapshots(tmp_path)
    steps: list[dict[str, Any]] = []

    def step(change: Callable[[], object]) -> None:
        change()
        steps.extend(edit(d.file, d.diff) for d in snaps.capture())

    step(lambda: stats.write_text(base.replace("xs[i:i + n]", "xs[i:i + n + 1]")))  # 1 wrong
    step(lambda: stats.write_text(base))  # 2 its revert
    step(lambda: stats.write_text(base.replace("len(xs) - n)", "len(xs) - n + 1)")))  # 3 fix
    step(
        lambda: (tmp_path / "windows.py").write_text(
            "def count(xs, n):\n    return len(xs) - n + 1\n"
        )
    )  # 4
    step(lambda: (tmp_path / "windows.py").rename(tmp_path / "win.py"))  # 5, 6: add, delete
    step(lambda: (tmp_path / "win.py").rename(tmp_path / "windows.py"))  # 7, 8: delete, add
    step(lambda: (tmp_path / "notes.txt").write_bytes(b"windows\r\nof n values, n > 0\r\n"))  # 9
    step(lambda: (tmp_path / "notes.txt").write_bytes(b"windows\r\nof n values\r\n"))  # 10

    assert [e["details"]["file"] for e in steps] == [
        "stats.py", "stats.py", "stats.py", "windows.py",
        "win.py", "windows.py", "win.py", "windows.py",
        "notes.txt", "notes.txt",
    ]  # fmt: skip
    assert "\nindex " in steps[0]["details"]["diff"]
    assert dead_ends(trace(*steps)) == {
        1: "undone by edit #2",  # the wrong attempt
        5: "undone by edit #7",  # the rename: win.py written, deleted by 7
        6: "undone by edit #8",  # and windows.py deleted, written back by 8
        9: "undone by edit #10",  # the CRLF line, changed back
    }


# -- what finalize adds --------------------------------------------------------------------------


def test_an_edit_finalize_could_not_apply_is_a_dead_end_unless_it_was_never_tried() -> None:
    result = TraceResult(
        edits=[
            EditResult(seq=3, file="stats.py", status="applied", method="git-apply"),
            EditResult(seq=6, file="stats.py", status="applied", method="git-apply"),
            EditResult(seq=7, file="stats.py", status="failed", message="patch does not apply\n"),
            EditResult(
                seq=8,
                file="tests/test_stats.py",
                status="failed",
                message="not tried: the apply stage's time budget of 60s ran out",
            ),
        ]
    )
    assert dead_ends(session(result)) == {
        3: "undone by edit #6",
        7: "finalize could not apply it (failed: patch does not apply)",
    }


def test_an_edit_per_edit_replay_saw_turn_a_test_green_is_never_a_dead_end() -> None:
    # The agent wrote a working fix (1), doubted it and reverted it (2), then wrote another fix
    # (3). By the diffs alone edit 1 was undone, and its line is nowhere at the end.
    other_fix = FIX_RANGE.replace("range(len(xs) - n + 1)", "range(len(xs) + 1 - n)")
    t = trace(
        edit("stats.py", FIX_RANGE),
        edit("stats.py", reverse(FIX_RANGE)),
        edit("stats.py", other_fix),
    )
    assert dead_ends(t) == {1: "undone by edit #2"}
    # But ``finalize --per-edit`` saw the test pass right after edit 1: it was a working fix,
    # not a dead end.
    t.result = TraceResult(
        validation=Validation(
            fix_validated=True,
            fail_to_pass=["tests/test_stats.py::test_moving_average_keeps_the_last_window"],
            turned_green_by={"tests/test_stats.py::test_moving_average_keeps_the_last_window": 1},
        )
    )
    assert dead_ends(t) == {}


def test_events_without_seq_are_numbered_by_position_as_the_chat_rows_number_them() -> None:
    t = session()
    for ev in t.events:
        ev.seq = None
    assert dead_ends(t) == {3: "undone by edit #6"}


# -- properties ----------------------------------------------------------------------------------

LINES = st.lists(st.sampled_from(["a", "b", "c", "    pass", "", "x = 1"]), max_size=12)


def unified(old: list[str], new: list[str], path: str = "f.py") -> str:
    return "".join(
        difflib.unified_diff(
            [line + "\n" for line in old],
            [line + "\n" for line in new],
            f"a/{path}",
            f"b/{path}",
        )
    )


def reverse(diff: str) -> str:
    """The exact reverse of a diff (``git apply -R``): hunk ranges swapped, ``-`` for ``+``."""
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("@@"):
            _, old, new, *rest = line.split(" ")
            out.append(" ".join(["@@", "-" + new[1:], "+" + old[1:], *rest]))
        elif line.startswith(("---", "+++")):
            out.append(line)
        elif line.startswith("-"):
            out.append("+" + line[1:])
        elif line.startswith("+"):
            out.append("-" + line[1:])
        else:
            out.append(line)
    return "".join(out)


def edits(*diffs: str) -> list[tuple[int, EditEvent]]:
    return [(i, EditEvent.new("f.py", d)) for i, d in enumerate(diffs, start=1)]


@settings(max_examples=300, deadline=None)
@given(base=LINES, new=LINES)
def test_an_edit_followed_by_its_exact_reverse_is_always_a_dead_end(
    base: list[str], new: list[str]
) -> None:
    forward = unified(base, new)
    if not forward:
        return  # no change, no edit
    assert undone_edits(edits(forward, reverse(forward))) == {1: 2}


@settings(max_examples=300, deadline=None)
@given(
    base=st.lists(st.sampled_from("abcdefgh"), max_size=10, unique=True),
    keep=st.lists(st.booleans(), min_size=10, max_size=10),
    inserts=st.lists(
        st.lists(st.sampled_from(["X = 1", "Y = 2", "Z = 3"]), max_size=2), min_size=11, max_size=11
    ),
)
def test_a_diff_back_to_the_base_undoes_an_edit(
    base: list[str], keep: list[bool], inserts: list[list[str]]
) -> None:
    # The edit deletes some lines of the base and writes new ones between them; the diff back
    # to the base (however difflib aligns it) deletes the new lines and writes the old back.
    new = [*inserts[0]]
    for line, kept, more in zip(base, keep, inserts[1:], strict=False):
        new += ([line] if kept else []) + more
    forward, back = unified(base, new), unified(new, base)
    if forward:
        assert undone_edits(edits(forward, back)) == {1: 2}


def test_lines_are_followed_by_position_so_a_move_back_is_missed() -> None:
    # A known limit, on the safe side: the rule follows lines by where they are, not by their
    # text. Here edit 1 swaps two lines (diff: write "b" above "a", delete the old "b") and edit
    # 2 swaps them back by writing "a" above and deleting the old "a": the file is the base
    # again, but edit 1's "b" is still there, so edit 1 is not called a dead end.
    swap = "--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n+b\n a\n-b\n"
    swap_back = "--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n+a\n b\n-a\n"
    assert undone_edits(edits(swap, swap_back)) == {}


@settings(max_examples=300, deadline=None)
@given(
    head=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6),
    head_new=st.lists(st.sampled_from(["a", "b", "x"]), max_size=6),
    tails=st.lists(st.lists(st.sampled_from(["t", "u", "v"]), max_size=6), min_size=1, max_size=4),
)
def test_an_edit_never_touched_again_is_never_a_dead_end(
    head: list[str], head_new: list[str], tails: list[list[str]]
) -> None:
    # Edit 1 changes the top of the file; every later edit rewrites only the bottom, 10
    # unchanged lines below (out of reach of its 3 lines of context).
    middle = [f"keep {i}" for i in range(10)]
    states = [head + middle + tails[0], head_new + middle + tails[0]]
    states += [head_new + middle + tail for tail in tails[1:]]
    diffs = [unified(a, b) for a, b in itertools.pairwise(states)]
    if not diffs[0]:
        return
    assert 1 not in undone_edits(edits(*[d for d in diffs if d]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=5))
def test_any_recorded_text_is_read_without_error(diffs: list[str]) -> None:
    t = trace(*[edit("f.py", d) for d in diffs])
    ends = dead_ends(t)
    assert set(ends) <= set(range(1, len(diffs) + 1))


@settings(max_examples=300, deadline=None)
@given(
    head=st.lists(st.sampled_from("abcdefgh"), max_size=8, unique=True),
    keep=st.lists(st.booleans(), min_size=8, max_size=8),
    inserts=st.lists(
        st.lists(st.sampled_from(["X = 1", "Y = 2"]), max_size=2), min_size=9, max_size=9
    ),
    work=st.integers(0, 3),
)
def test_an_attempt_reverted_after_other_work_is_a_dead_end_and_the_work_is_not(
    head: list[str], keep: list[bool], inserts: list[list[str]], work: int
) -> None:
    # Edit 1 rewrites the top of the file; the next edits each add a line at the bottom (the
    # work that stays); the last puts the top back as it was, which moves every line below it.
    # Every diff is difflib's between the real states of the file.
    tails = [[f"work({j})" for j in range(k)] for k in range(work + 1)]
    attempt = [*inserts[0]]
    for line, kept, more in zip(head, keep, inserts[1:], strict=False):
        attempt += ([line] if kept else []) + more
    middle = [f"keep {i}" for i in range(10)]
    states = [head + middle + tails[0], attempt + middle + tails[0]]
    states += [attempt + middle + tail for tail in tails[1:]]
    states.append(head + middle + states[-1][len(attempt) + len(middle) :])
    diffs = [unified(a, b) for a, b in itertools.pairwise(states)]
    if not diffs[0]:
        return
    numbered = [(i, EditEvent.new("f.py", d)) for i, d in enumerate(diffs, start=1) if d]
    assert undone_edits(numbered) == {1: numbered[-1][0]}


def test_replay_stays_fast_on_a_diff_of_many_small_hunks() -> None:
    # an outside review's case: 18 s for one 618 KB diff when each known line scanned every hunk
    n = 20_000
    add = f"--- /dev/null\n+++ b/big.py\n@@ -0,0 +1,{n} @@\n" + "".join(
        f"+x{i} = {i}\n" for i in range(n)
    )
    change = "--- a/big.py\n+++ b/big.py\n" + "".join(
        f"@@ -{i + 1} +{i + 1} @@\n-x{i} = {i}\n+x{i} = {i + 1}\n" for i in range(0, n, 2)
    )
    trace = sample_trace(events=[EditEvent.new("big.py", add), EditEvent.new("big.py", change)])
    start = time.perf_counter()
    assert dead_ends(trace) == {}
    assert time.perf_counter() - start < 5.0


def test_a_probe_taken_out_once_it_spoke_is_debugging_not_a_dead_end() -> None:
    # a print added to look inside, removed after the run that showed the cause
    probe = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,3 @@\n def divide(a, b):\n"
        "+    print('divide', a, b, type(b))\n     return a / b\n"
    )
    unprobe = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,2 @@\n def divide(a, b):\n"
        "-    print('divide', a, b, type(b))\n     return a / b\n"
    )
    attempt = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def divide(a, b):\n"
        "-    return a / b\n+    return a // b\n"
    )
    undo = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def divide(a, b):\n"
        "-    return a // b\n+    return a / b\n"
    )
    events = [EditEvent.new("calc.py", d) for d in (probe, unprobe, attempt, undo)]
    assert dead_ends(sample_trace(events=events)) == {3: "undone by edit #4"}
    assert instrumentation(probe) and not instrumentation(attempt)
    assert instrumentation("+++ b/x.js\n+  console.log(req.headers)\n+  // why 401?\n")
    assert not instrumentation("+++ b/x.py\n+    print_report(rows)\n")
