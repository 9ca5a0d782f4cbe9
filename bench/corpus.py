"""A realistic corpus of command output, generated at bench time from real commands and formats.

Nothing here is hand-written text or a file copied from one machine: each piece is what a real
command prints on the machine running the bench (git, pip, dpkg, ls, python, pytest), or a real
format produced by a real tool (an npm lockfile with integrity hashes, hash-pinned requirements
from ``uv pip compile --generate-hashes``, a container build log, base64 of a binary). Pieces
whose tool is missing (or that need the network and do not get it) are skipped and named.

    python bench/corpus.py            # prints the make-up
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (2 * 1024, 8 * 1024, 32 * 1024, 64 * 1024)
"""Outputs of one event, in turn: a long output becomes several commands' outputs of these
sizes (real outputs range from a line to tens of KB; ingestion bounds them later)."""


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 120) -> str | None:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = proc.stdout + proc.stderr
    return out if out.strip() else None


def git_log() -> str | None:
    return _run(["git", "log", "--stat", "-n", "400"], ROOT)


def git_show() -> str | None:
    return _run(["git", "show", "--stat", "-p", "HEAD~3"], ROOT)


def pip_freeze() -> str | None:
    return _run([sys.executable, "-m", "pip", "freeze"])


def pip_list() -> str | None:
    return _run([sys.executable, "-m", "pip", "list", "-v"])


def dpkg() -> str | None:
    return _run(["dpkg", "-l"]) if shutil.which("dpkg") else None


def ls_libs() -> str | None:
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        if os.path.isdir(folder):
            return _run(["ls", "-la", folder])
    return None


def sources() -> str | None:
    import argparse
    import json.decoder
    import logging
    import subprocess as sp
    import tarfile

    mods = (argparse, json.decoder, logging, sp, tarfile)
    return "".join(Path(m.__file__ or "").read_text() for m in mods)


def traceback_output() -> str | None:
    code = (
        "import json, urllib.parse\n"
        "def parse(doc):\n    return json.loads(doc)\n"
        "def handler(q):\n    try:\n        return parse(urllib.parse.unquote(q))\n"
        "    except ValueError as exc:\n        raise RuntimeError('bad request body') from exc\n"
        "handler('%7B%22a%22%3A')\n"
    )
    return _run([sys.executable, "-c", code])


def pytest_output() -> str | None:
    return _run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/test_layers.py"],
        ROOT,
        timeout=300,
    )


def pip_install_log() -> str | None:
    """``pip install --dry-run -v``: resolver log with index URLs, wheel names and hashes."""
    return _run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-v"),
            *("--report", "-", "flask", "requests"),
        ],
        timeout=300,
    )


def npm_lockfile() -> str | None:
    if not shutil.which("npm"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "package.json").write_text(
            '{"name": "corpus", "version": "1.0.0", "dependencies": '
            '{"express": "^4.19.0", "jest": "^29.7.0"}}'
        )
        _run(["npm", "install", "--package-lock-only", "--ignore-scripts"], Path(tmp), 300)
        lock = Path(tmp, "package-lock.json")
        return lock.read_text() if lock.is_file() else None


def hashed_requirements() -> str | None:
    try:
        from uv import find_uv_bin

        uv = str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        uv = shutil.which("uv") or ""
    if not uv:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "in.txt").write_text("requests\nflask\nboto3\nnumpy\n")
        return _run(
            [uv, "pip", "compile", "--no-config", "--generate-hashes", "-q", "in.txt"], Path(tmp)
        )


def container_build() -> str | None:
    """A real ``docker build`` log (the classic builder: steps, layer ids, digests)."""
    if not shutil.which("docker") or not os.environ.get("DOCKER_HOST"):
        return None
    images = _run(["docker", "images", "--digests", "--no-trunc"])
    if not images or "debugtrace-python" not in images:
        return images
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "Dockerfile").write_text(
            "FROM debugtrace-python:3.11\nRUN python3 -c 'print(42)'\nENV A=1\n"
        )
        log = _run(["docker", "build", "--no-cache", "-t", "corpus-probe", tmp], timeout=300)
        _run(["docker", "rmi", "-f", "corpus-probe"])
        return (images or "") + (log or "")


def base64_blob() -> str | None:
    for path in ("/usr/bin/ls", sys.executable):
        if os.path.isfile(path):
            data = Path(path).read_bytes()[: 48 * 1024]
            return base64.encodebytes(data).decode()
    return None


PIECES: dict[str, Callable[[], str | None]] = {
    "git log --stat": git_log,
    "git show": git_show,
    "pip freeze": pip_freeze,
    "pip list -v": pip_list,
    "dpkg -l": dpkg,
    "ls -la /usr/lib/...": ls_libs,
    "source files": sources,
    "python traceback": traceback_output,
    "pytest -v": pytest_output,
    "pip install --dry-run -v --report": pip_install_log,
    "npm lockfile (integrity hashes)": npm_lockfile,
    "uv pip compile --generate-hashes": hashed_requirements,
    "docker images --digests + docker build": container_build,
    "base64 of a binary": base64_blob,
}


def build() -> tuple[list[tuple[str, str]], dict[str, int], list[str]]:
    """(piece name, output) events, a long output cut at line ends into outputs of the
    :data:`SIZES` in turn; the bytes per piece; the pieces skipped."""
    events: list[tuple[str, str]] = []
    sizes: dict[str, int] = {}
    skipped: list[str] = []
    turn = 0
    for name, make in PIECES.items():
        text = make()
        if not text:
            skipped.append(name)
            continue
        sizes[name] = len(text.encode())
        chunk: list[str] = []
        size = 0
        for line in text.splitlines(keepends=True):
            limit = SIZES[turn % len(SIZES)]
            if size + len(line) > limit and chunk:
                events.append((name, "".join(chunk)))
                chunk, size = [], 0
                turn += 1
            chunk.append(line[: SIZES[-1]])
            size += len(line)
        if chunk:
            events.append((name, "".join(chunk)))
            turn += 1
    return events, sizes, skipped


if __name__ == "__main__":
    evs, by_piece, missing = build()
    total = sum(by_piece.values())
    print(f"{len(evs)} events, {total / 1e6:.2f} MB")
    for name, size in by_piece.items():
        print(f"  {name:<42}{size / 1e3:>9.1f} KB")
    if missing:
        print("skipped (tool or network missing):", ", ".join(missing))
