"""Shell integration: ``eval "$(debugtrace shell-init bash|zsh)"`` in a real interactive shell on a
pseudo-terminal records each command line of a session (``debugtrace record``) with its exit status,
followed by the edits it made, and stays out of the way otherwise."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from debugtrace.capture.shell import command_line, snippet
from debugtrace.cli import main
from support.calc_repo import make_calc_repo
from support.services import require

VENV_BIN = Path(sys.executable).parent
PROMPT = re.compile(rb"<dt:(\d+)>")
ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[=>])|\r")
# The shell's parent: make the terminal the controlling one of the new session, then exec the shell.
CTTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
FIXED = (
    r"printf 'def divide(a, b):\n    if b == 0:\n        raise ValueError(b)\n"
    r"    return a / b\n' > calc.py"
)
FAILING = 'python3 -c "import calc; calc.divide(1, 0)"'
PASSING = 'python3 -c "import calc; print(calc.divide(6, 3))"'

RC = {
    "bash": """set -u
HISTCONTROL=ignoreboth __user_prompts=0
PROMPT_COMMAND='__user_prompts=$((__user_prompts + 1))'
PS1='<dt:$?>$ '
eval "$(debugtrace shell-init bash)"
""",
    "zsh": """setopt histignorespace nounset
__user_prompts=0
unsetopt promptsp
unset zle_bracketed_paste
__user_precmd() { __user_prompts=$((__user_prompts + 1)); false; }
autoload -Uz add-zsh-hook && add-zsh-hook precmd __user_precmd
PS1='<dt:%?>$ '
eval "$(debugtrace shell-init zsh)"
""",
}


class Terminal:
    """An interactive shell on a pseudo-terminal, fed one command line at a time."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        # A wide terminal, so that line editing echoes long lines as typed.
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CTTY, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.buffer = b""
        self.prompts = 0
        self.wait_prompt()

    def _read(self, deadline: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the shell is gone
            chunk = b""
        if not chunk:
            raise AssertionError(f"the shell ended; it printed:\n{self.text()}")
        self.buffer += chunk

    def wait_prompt(self, timeout: float = 30) -> int:
        """Wait for the next prompt; returns the exit status it shows (``$?``)."""
        deadline = time.monotonic() + timeout
        while len(PROMPT.findall(self.buffer)) <= self.prompts:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no prompt after {timeout}s; the shell printed:\n{self.text()}"
                )
            self._read(deadline)
        self.prompts += 1
        return int(PROMPT.findall(self.buffer)[self.prompts - 1])

    def run(self, line: str) -> tuple[int, str]:
        """Type ``line``; returns the status the next prompt shows and what was printed before."""
        start = len(self.buffer)
        os.write(self.fd, line.encode() + b"\r")
        status = self.wait_prompt()
        end = list(PROMPT.finditer(self.buffer))[self.prompts - 1].start()
        return status, ESCAPES.sub("", self.buffer[start:end].decode(errors="replace"))

    def text(self) -> str:
        return ESCAPES.sub("", self.buffer.decode(errors="replace"))

    def close(self) -> str:
        """Leave the shell; returns everything it printed."""
        if self.proc.poll() is None:
            os.write(self.fd, b"exit\r")
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    self._read(min(deadline, time.monotonic() + 0.2))
                except AssertionError:
                    break
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.fd)
        return self.text()


def shell_env(tmp: Path) -> dict[str, str]:
    """A hermetic environment: this test's database and home, this venv first on PATH."""
    dropped = ("DEBUGTRACE_", "PYTEST_", "HIST", "PROMPT_COMMAND", "PS0", "PS1", "BASH_ENV", "ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped) and k != "ZDOTDIR"}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update(
        DEBUGTRACE_DATABASE_URL=f"sqlite:///{tmp / 'traces.db'}",
        DEBUGTRACE_DATA_DIR=str(tmp / "data"),
        DEBUGTRACE_LOAD_PLUGINS="",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        HOME=str(home),
        ZDOTDIR=str(home),
        HISTFILE=str(home / "history"),
        INPUTRC="/dev/null",
        TERM="dumb",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.defpath)}",
    )
    return env


def open_shell(shell: str, tmp: Path, repo: Path) -> Terminal:
    """An interactive ``shell`` in ``repo`` with the integration loaded from its rc file."""
    exe = shutil.which(shell)
    if exe is None:
        require(shell, f"{shell} is not installed (CI installs it in .ci/run)")
    assert exe is not None
    env = shell_env(tmp)
    if shell == "bash":
        rc = tmp / "bashrc"
        rc.write_text(RC["bash"])
        argv = [exe, "--noprofile", "--rcfile", str(rc), "-i"]
    else:
        (tmp / "home" / ".zshrc").write_text(RC["zsh"])
        argv = [exe, "-d", "-i"]  # -d: no /etc/zsh/zshrc
    return Terminal(argv, env, repo)


def dt(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "debugtrace"), *args],
        env=shell_env(tmp),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stored_trace(tmp: Path, trace_id: str) -> dict[str, Any]:
    proc = dt(tmp, "show", trace_id, "--json")
    assert proc.returncode == 0, proc.stderr
    trace: dict[str, Any] = json.loads(proc.stdout)
    return trace


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_a_session_typed_in_the_shell_is_recorded(shell: str, tmp_path: Path) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    term = open_shell(shell, tmp_path, repo)
    try:
        assert term.run("true") == (0, "true\n")  # outside a session: nothing recorded, no noise
        status, out = term.run('debugtrace start --bug "divide(1, 0) raises ZeroDivisionError"')
        assert status == 0, out
        trace_id = re.findall(r"^([0-9a-f]{24})$", out, re.M)[-1]
        assert term.run('echo "session=$DEBUGTRACE_SESSION"')[1].endswith(f"session={trace_id}\n")
        status, out = term.run(FAILING)
        assert status == 1, out  # the prompt still sees the command's own $?
        assert "ZeroDivisionError" in out
        assert term.run(" echo secret")[0] == 0  # kept out of the history: kept out of the trace
        assert term.run(FIXED)[0] == 0
        assert term.run(PASSING) == (0, f"{PASSING}\n2.0\n")
        assert term.run("cd / && debugtrace stop")[0] == 0  # this shell's session, from anywhere
        assert term.run('echo "after=${DEBUGTRACE_SESSION-none}"')[1].endswith("after=none\n")
        status, out = term.run('echo "user prompts=$__user_prompts"')
        assert int(re.findall(r"user prompts=(\d+)", out)[-1]) >= 10  # the user's hook still runs
        if shell == "bash":  # the hook is gone from the prompt, the history settings are back
            out = term.run('echo "[$PROMPT_COMMAND] [$PS0] [$HISTCONTROL]"')[1]
            assert out.endswith("[__user_prompts=$((__user_prompts + 1))] [] [ignoreboth]\n")
    finally:
        printed = term.close()
    # No warning from the hook, no error from its code (the shells run with nounset).
    assert "debugtrace:" not in printed, printed
    assert "__debugtrace" not in printed, printed

    listing = json.loads(dt(tmp_path, "list", "--json").stdout)
    assert [t["id"] for t in listing["items"]] == [trace_id]
    events = stored_trace(tmp_path, trace_id)["events"]
    summary = [(e["type"], e["details"].get("command", e["details"].get("file"))) for e in events]
    assert summary == [
        ("command", 'echo "session=$DEBUGTRACE_SESSION"'),
        ("command", FAILING),
        ("command", FIXED),
        ("edit", "calc.py"),
        ("command", PASSING),
    ]
    commands = [e["details"] for e in events if e["type"] == "command"]
    assert [c["exit_code"] for c in commands] == [0, 1, 0, 0]
    for c in commands:
        assert c["output_captured"] is False
        assert c["output"] == ""
        assert c["cwd"] == str(repo)
        assert 0 <= c["duration_s"] < 30
    assert "+        raise ValueError" in events[3]["details"]["diff"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_hook_survives_a_broken_store_and_a_session_stopped_elsewhere(
    shell: str, tmp_path: Path
) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    term = open_shell(shell, tmp_path, repo)
    try:
        first = term.run("debugtrace start --bug first")[1].split()[-1]
        # A broken store: one warning, then silence; the shell and its $? are untouched.
        status, out = term.run("export DEBUGTRACE_DATABASE_URL=sqlite:////nonexistent/dir/x.db")
        assert status == 0
        assert out.count("debugtrace: could not record the last command") == 1, out
        for _ in range(2):
            assert term.run("false") == (1, "false\n")
        term.run(f"export DEBUGTRACE_DATABASE_URL=sqlite:///{tmp_path / 'traces.db'}")
        # Stopped behind the shell's back (not through the wrapper): said once, recording ends.
        assert term.run(f"command debugtrace stop {first}")[0] == 0
        status, out = term.run("true")
        assert f"debugtrace: trace {first} is not open any more" in out
        assert term.run('echo "now=${DEBUGTRACE_SESSION-none}"')[1].endswith("now=none\n")
    finally:
        term.close()
    commands = [e["details"]["command"] for e in stored_trace(tmp_path, first)["events"]]
    assert commands == [f"export DEBUGTRACE_DATABASE_URL=sqlite:///{tmp_path / 'traces.db'}"]


# -- debugtrace record / shell-init, without a shell ------------------------------------------


def test_record_stores_the_command_then_the_edit_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    monkeypatch.chdir(repo)
    assert main(["start", "--bug", "divide by zero"]) == 0
    trace_id = capsys.readouterr().out.strip()
    (repo / "calc.py").write_text("def divide(a, b):\n    return a / b if b else 0\n")
    code = main(
        ["record", trace_id, "--exit-code", "3", "--duration", "0.25", "--", "sed", "-i", "x y"]
    )
    assert code == 0
    assert main(["record", "--exit-code", "0", "--cwd", "..", "--", "pytest -x | tail"]) == 0
    assert main(["show", trace_id, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["type"] for e in events] == ["command", "edit", "command"]
    first, edit, second = (e["details"] for e in events)
    assert first == {
        "command": "sed -i 'x y'",
        "output": "",
        "exit_code": 3,
        "cwd": str(repo),
        "duration_s": 0.25,
        "output_captured": False,
        "source": "shell",
    }
    assert edit["file"] == "calc.py"
    assert (second["command"], second["cwd"], second["duration_s"]) == (
        "pytest -x | tail",
        str(tmp_path),
        None,
    )


def test_record_without_a_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    monkeypatch.chdir(repo)
    assert main(["record", "--quiet", "--exit-code", "0", "--", "ls"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["record", "--exit-code", "0", "--", "ls"]) == 1
    assert "no open trace" in capsys.readouterr().err
    # A named session that is not open (any more): 3, which makes the hook stop recording.
    assert main(["record", "--quiet", "--exit-code", "0", "0123abcd", "--", "ls"]) == 3
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exit-code", "0", "ls"], "the command goes after `--`"),
        (["--", "ls"], "--exit-code is required"),
        (["--exit-code", "0", "--duration", "-1", "--", "ls"], "--duration must be"),
        (["a", "b", "--exit-code", "0", "--", "ls"], "unrecognized arguments: b"),
        (["--exit-code", "0", "--", " "], "no command to record"),
    ],
)
def test_record_refuses_bad_arguments_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert message in err


def test_shell_init_prints_a_snippet_that_calls_this_debugtrace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for shell in ("bash", "zsh"):
        assert main(["shell-init", shell]) == 0
        text = capsys.readouterr().out
        assert "__debugtrace_precmd" in text
        assert "@DEBUGTRACE_BIN@" not in text
        assert "__debugtrace_bin=" in text
        check = shutil.which(shell)
        if check:  # it parses
            assert subprocess.run([check, "-n"], input=text, text=True).returncode == 0
    assert "'/opt/my tools/debugtrace'" in snippet("bash", "/opt/my tools/debugtrace")
    with pytest.raises(ValueError, match="fish"):
        snippet("fish")


def test_command_line_keeps_a_typed_line_and_quotes_an_argv() -> None:
    assert command_line(["pytest -x | tail -5"]) == "pytest -x | tail -5"
    assert command_line(["grep", "-n", "a b", "f.py"]) == "grep -n 'a b' f.py"
