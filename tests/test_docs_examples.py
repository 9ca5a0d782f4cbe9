"""The worked examples of the docs are executed, so they cannot go stale.

Convention: a fenced code block whose info string is ``sh example`` or ``python example`` is part of
its page's worked example. A ``text output`` block as the next code block after one (prose in
between is fine) lists lines that must appear in that block's output (stdout or stderr), in any
order; ``...`` inside a line matches anything.

How a page runs: all its example blocks, in order, in one fresh temporary directory per page. Every
block starts in that directory (a block that needs the repository does ``cd calc`` itself) and
shares nothing with the others but the files: ``sh`` blocks run with ``bash -euo pipefail``,
``python`` blocks with this venv's python. The environment is hermetic: ``DEBUGTRACE_DATA_DIR``
and ``HOME`` inside the temp dir, no other ``DEBUGTRACE_*`` (but DEBUGTRACE_REQUIRE_SERVICES /
DEBUGTRACE_TEST_POSTGRES_URL), ``OPENAI_*``, ``PYTEST_*``, ``GIT_*`` or ``XDG_*`` variable from
outside, this venv's bin first on PATH, a git identity, and a free TCP port in ``PORT``. Each block
runs in a process group of its own; whatever is left of them is killed when the page ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
VENV_BIN = Path(sys.executable).parent
BLOCK_TIMEOUT_S = 180
KEPT = ("DEBUGTRACE_REQUIRE_SERVICES", "DEBUGTRACE_TEST_POSTGRES_URL")
DROPPED_PREFIXES = ("DEBUGTRACE_", "OPENAI_", "PYTEST_", "GIT_", "XDG_")
FENCE = re.compile(r"^ {0,3}(`{3,})\s*([^`]*?)\s*$")


@dataclass(frozen=True)
class Fenced:
    """A fenced code block: its info string, its text and the line of its opening fence."""

    info: str
    text: str
    line: int


@dataclass(frozen=True)
class Example:
    """One example block and the lines its output must contain."""

    language: str
    text: str
    line: int
    expected: tuple[str, ...] = ()


def fenced_blocks(lines: list[str]) -> list[Fenced]:
    """Every fenced (backtick) code block of a Markdown page, in order."""
    blocks: list[Fenced] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        close = re.compile(rf"^ {{0,3}}{opening.group(1)}`*\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        blocks.append(Fenced(opening.group(2), "".join(f"{x}\n" for x in lines[i + 1 : j]), i + 1))
        i = j + 1
    return blocks


def is_example(block: Fenced) -> bool:
    return block.info.split()[1:] == ["example"]


def examples(page: Path) -> list[Example]:
    """The example blocks of ``page``, each with the output lines expected of it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    previous: Fenced | None = None
    for block in fenced_blocks(lines):
        where = f"docs/{page.name}:{block.line}"
        if is_example(block):
            language = block.info.split()[0]
            if language not in ("sh", "python"):
                raise ValueError(f"{where}: `{block.info}`: examples are `sh` or `python`")
            found.append(Example(language, block.text, block.line))
        elif block.info == "text output":
            if previous is None or not is_example(previous):
                raise ValueError(f"{where}: a `text output` block must directly follow an example")
            wanted = tuple(x.strip() for x in block.text.splitlines() if x.strip())
            found[-1] = Example(found[-1].language, found[-1].text, found[-1].line, wanted)
        previous = block
    return found


def pages_with_examples() -> list[Path]:
    return [
        page
        for page in sorted(DOCS.glob("*.md"))
        if any(is_example(b) for b in fenced_blocks(page.read_text(encoding="utf-8").splitlines()))
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a page's server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hermetic_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(DROPPED_PREFIXES)}
    (tmp / "home").mkdir()
    env.update(
        DEBUGTRACE_DATA_DIR=str(tmp / "data"),
        HOME=str(tmp / "home"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.defpath)}",
        GIT_AUTHOR_NAME="Docs Example",
        GIT_AUTHOR_EMAIL="docs@example.com",
        GIT_COMMITTER_NAME="Docs Example",
        GIT_COMMITTER_EMAIL="docs@example.com",
        PORT=str(free_port()),
    )
    return env


def matches(expected: str, output: str) -> bool:
    """Whether some line of ``output`` contains ``expected`` (``...`` matching anything)."""
    pattern = re.compile(".*".join(re.escape(part) for part in expected.split("...")))
    return any(pattern.search(line) for line in output.splitlines())


def run_example(
    page: Path, n: int, example: Example, tmp: Path, env: dict[str, str], groups: list[int]
) -> None:
    """Run one block; fail with its text, stdout and stderr when it fails or misses an output."""
    script = tmp / "blocks" / f"{n:02d}.{'sh' if example.language == 'sh' else 'py'}"
    script.parent.mkdir(exist_ok=True)
    script.write_text(example.text, encoding="utf-8")
    argv = (
        ["bash", "-euo", "pipefail", str(script)]
        if example.language == "sh"
        else [sys.executable, str(script)]
    )
    out_path, err_path = script.with_suffix(".stdout"), script.with_suffix(".stderr")
    # Output goes to files, not pipes: a server the block leaves running must not hold us up.
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=tmp / "work",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    groups.append(proc.pid)
    try:
        code = proc.wait(timeout=BLOCK_TIMEOUT_S)
        why = f"exited with {code}"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code, why = -1, f"was killed after {BLOCK_TIMEOUT_S}s"
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    missing = [x for x in example.expected if not matches(x, stdout + "\n" + stderr)]
    if code == 0 and not missing:
        return
    if code == 0:
        why = f"did not print these lines: {missing}"
    pytest.fail(
        f"docs/{page.name}:{example.line}: example block {n} ({example.language}) {why}\n"
        f"--- block ---\n{example.text}"
        f"--- stdout ---\n{stdout[-8000:]}\n"
        f"--- stderr ---\n{stderr[-8000:]}",
        pytrace=False,
    )


def test_the_front_end_pages_have_worked_examples() -> None:
    required = ["python-api.md", "cli.md", "http.md"]
    if (DOCS / "pytest.md").exists():
        required.append("pytest.md")
    for name in required:
        assert examples(DOCS / name), f"docs/{name} has no `sh example` / `python example` block"


@pytest.mark.slow
@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda page: page.name)
def test_worked_example(page: Path, tmp_path: Path) -> None:
    blocks = examples(page)
    env = hermetic_env(tmp_path)
    (tmp_path / "work").mkdir()
    groups: list[int] = []
    try:
        for n, example in enumerate(blocks, 1):
            run_example(page, n, example, tmp_path, env, groups)
    finally:
        for group in groups:  # whatever a block left running (a server in the background)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
