"""What a training row keeps of the machine a trace was recorded on: nothing.

Each case is what a real recording held (the pytest plugin's command line, a virtualenv's
interpreter, a traceback, `git diff`'s headers) and what the exported row says instead.
"""

from __future__ import annotations

import json

from debugtrace.export.chat import to_chat
from debugtrace.export.hygiene import Scrub, strip_git_headers
from debugtrace.model import CommandEvent, EditEvent, ReasoningEvent
from debugtrace.testing import sample_trace
from debugtrace.textutil import strip_debugtrace_flags

ROOT = "/home/ana/src/more-itertools"

GIT_DIFF = """\
diff --git a/more_itertools/more.py b/more_itertools/more.py
index 7b48190..e598870 100755
--- a/more_itertools/more.py
+++ b/more_itertools/more.py
@@ -3021,7 +3021,7 @@ def ichunked(iterable, n):
     source = peekable(iter(iterable))
-    ichunk_marker = object()
+    ichunk_marker = None
     while True:
"""

TRACEBACK = f"""\
Traceback (most recent call last):
  File "{ROOT}/more_itertools/tests/test_more.py", line 88, in test_ichunked
    self.assertEqual(actual, expected)
  File "/home/ana/.pyenv/versions/3.11.7/lib/python3.11/unittest/case.py", line 873
AssertionError: Lists differ
"""


def trace_at_root(*events: object) -> object:
    return sample_trace(repo_url=ROOT, events=list(events))


def test_paths_are_relative_to_the_repository_and_home_is_tilde() -> None:
    scrub = Scrub(sample_trace(repo_url=ROOT, events=[]))
    assert scrub.text(TRACEBACK).splitlines()[1:4:2] == [
        '  File "more_itertools/tests/test_more.py", line 88, in test_ichunked',
        '  File "~/.pyenv/versions/3.11.7/lib/python3.11/unittest/case.py", line 873',
    ]
    assert scrub.text(f"cd {ROOT} && ls") == "cd . && ls"
    # a sibling directory sharing the root's prefix is not the repository
    assert scrub.text(f"{ROOT}-old/setup.py") == "~/src/more-itertools-old/setup.py"
    assert scrub.cwd(ROOT) is None  # the root is the default
    assert scrub.cwd(f"{ROOT}/docs") == "docs"
    assert scrub.repository(ROOT) == "more-itertools"
    assert scrub.repository("https://github.com/more-itertools/more-itertools") == (
        "https://github.com/more-itertools/more-itertools"
    )


def test_an_interpreter_or_tool_run_by_its_path_is_named() -> None:
    scrub = Scrub(sample_trace(repo_url=ROOT, events=[]))
    assert scrub.command(f"{ROOT}/.venv/bin/python -c 'import more_itertools'") == (
        "python -c 'import more_itertools'"
    )
    assert scrub.command("/usr/bin/python3.11 -m pytest -q") == "python -m pytest -q"
    assert scrub.command(f"{ROOT}/.venv/bin/pytest tests/test_more.py") == (
        "pytest tests/test_more.py"
    )


def test_the_root_is_where_the_commands_ran_when_the_repository_is_a_url() -> None:
    trace = sample_trace(
        repo_url="https://github.com/pallets/jinja.git",
        events=[
            CommandEvent.new("pytest", output="", exit_code=1, cwd="/testbed"),
            CommandEvent.new("ls", output="", exit_code=0, cwd="/testbed/src/jinja2"),
        ],
    )
    scrub = Scrub(trace)
    assert scrub.root == "/testbed"
    assert scrub.cwd("/testbed/src/jinja2") == "src/jinja2"
    # a home directory is never taken for the repository
    homed = sample_trace(events=[CommandEvent.new("ls", output="", exit_code=0, cwd="/home/ana")])
    assert Scrub(homed).root is None


def test_diffs_keep_the_unified_diff_only() -> None:
    assert strip_git_headers(GIT_DIFF) == GIT_DIFF.split("\n", 2)[2]
    # a hunk line that looks like a header is content, and stays
    body = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-index abc..def 100644\n+x\n"
    assert strip_git_headers("diff --git a/x b/x\n" + body) == body
    renamed = "diff --git a/a.py b/b.py\nsimilarity index 100%\nrename from a.py\nrename to b.py\n"
    assert strip_git_headers(renamed) == "rename from a.py\nrename to b.py\n"


def test_debugtrace_s_own_pytest_flags_are_stripped() -> None:
    recorded = "pytest -x --debugtrace --debugtrace-note 'it'\"'\"'s the marker' tests/test_more.py"
    assert strip_debugtrace_flags(recorded) == "pytest -x tests/test_more.py"
    assert strip_debugtrace_flags("pytest --debugtrace-note=why --debugtrace-finalize") == "pytest"
    # the rest of the line stays exactly as written: quotes, operators, variables
    assert strip_debugtrace_flags("FOO=1 pytest --debugtrace -k 'a or b' && echo $HOME") == (
        "FOO=1 pytest -k 'a or b' && echo $HOME"
    )
    assert strip_debugtrace_flags("pytest --debugtrace; rm -rf build/*") == "pytest; rm -rf build/*"
    assert strip_debugtrace_flags("grep -r debugtrace .") == "grep -r debugtrace ."


def test_a_row_made_from_a_recording_holds_no_host_path() -> None:
    trace = sample_trace(
        repo_url=ROOT,
        events=[
            ReasoningEvent.new(
                f"the marker in {ROOT}/more_itertools/more.py is shared", "hypothesis"
            ),
            CommandEvent.new(
                f"{ROOT}/.venv/bin/python -m pytest --debugtrace more_itertools/tests",
                output=TRACEBACK,
                exit_code=1,
                cwd=ROOT,
            ),
            EditEvent.new("more_itertools/more.py", GIT_DIFF),
        ],
    )
    trace.bug_description = (
        "`python -m pytest -x --debugtrace --debugtrace-note 'it'\"'\"'s the marker' tests` fails: "
        "tests/test_more.py::test_ichunked: AssertionError"
    )
    row = json.dumps(to_chat(trace))
    assert "Bug: `python -m pytest -x tests` fails: tests/test_more.py::test_ichunked" in row
    assert "/home/" not in row and "index 7b48190" not in row and "--debugtrace" not in row
    assert "python -m pytest more_itertools/tests" in row


def test_scrubbing_keeps_what_commands_and_code_mean() -> None:
    # found by an outside review: each was rewritten into something else
    scrub = Scrub(sample_trace(repo_url=ROOT, events=[]))
    assert scrub.command(f"cd {ROOT}/ && pytest") == "cd . && pytest"
    assert scrub.command(f'git -C "{ROOT}/" status') == 'git -C "." status'
    assert (
        scrub.text(f"file://{ROOT}/htmlcov/index.html")
        == f"file://{ROOT.replace('/home/ana', '~')}/htmlcov/index.html"
    )
    # the repository's own bin/ is a path in it, a virtualenv's interpreter is "python"
    assert scrub.command(f"{ROOT}/bin/rails test") == "bin/rails test"
    assert scrub.command(f"source {ROOT}/.venv/bin/activate") == "source .venv/bin/activate"
    assert scrub.command(f"{ROOT}/.venv/bin/python3 -m pytest") == "python -m pytest"
    # file content is content: a shebang and a path in code stay
    assert scrub.text("#!/usr/bin/env python3\nGIT = ['/usr/bin/git']") == (
        "#!/usr/bin/env python3\nGIT = ['/usr/bin/git']"
    )


def test_more_homes_are_tilde() -> None:
    scrub = Scrub(sample_trace(events=[]))
    for path, expected in [
        ("/var/home/ana/x", "~/x"),
        ("/nfs/home/ana/x", "~/x"),
        ("/mnt/c/Users/ana/x", "~/x"),
        ("C:\\Users\\ana\\x", "~\\x"),
        ("/tmp/pytest-of-ana/pytest-3/test_x0", "/tmp/pytest-of-user/pytest-3/test_x0"),
        ("/root/.cache/pip", "~/.cache/pip"),
    ]:
        assert scrub.text(path) == expected, path


def test_an_absolute_edit_path_is_relative_and_a_header_only_diff_says_something() -> None:
    trace = sample_trace(
        repo_url=ROOT,
        events=[
            EditEvent.new(
                f"{ROOT}/pkg/__init__.py",
                "diff --git a/pkg/__init__.py b/pkg/__init__.py\n"
                "new file mode 100644\nindex 0000000..e69de29\n",
            ),
        ],
    )
    row = to_chat(trace)
    [call] = [m for m in row["messages"] if m.get("tool_calls")]
    args = json.loads(call["tool_calls"][0]["function"]["arguments"])
    assert args == {
        "path": "pkg/__init__.py",
        "diff": "diff --git a/pkg/__init__.py b/pkg/__init__.py\nnew file mode 100644\n",
    }
    assert row["messages"][-1]["content"] == "Done: changed pkg/__init__.py."


def test_the_trace_s_own_metadata_loses_its_host_paths_too() -> None:
    trace = sample_trace(
        repo_url=ROOT,
        metadata={"cwd": f"{ROOT}/src", "imported_from": "/home/ana/.claude/projects/x.jsonl"},
    )
    meta = to_chat(trace)["metadata"]["trace_metadata"]
    assert meta == {"cwd": "src", "imported_from": "~/.claude/projects/x.jsonl"}
