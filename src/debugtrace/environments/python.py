"""A Python project's test environment: a virtual environment per (interpreter, dependencies).

What goes in: the project's runtime dependencies, its test dependencies (see
:func:`~debugtrace.environments.pydeps.read_dependencies`), pytest unless they name it, and the
project itself *from the checkout*: its source folder goes first on ``PYTHONPATH`` (before
site-packages, so the checkout shadows a same-named package pytest brings, such as packaging or
pluggy), any installed copy of it is removed, and a ``.dist-info`` made from its static metadata
(name, version, entry points) lets ``importlib.metadata`` and pytest's plugin autoload find it as
an editable install would. Nothing of the project is built or run on the host: dependencies are
installed from wheels only.

Built with uv (the ``uv`` package's binary, or ``uv`` on ``PATH``) or pip into
``<data_dir>/envs/python/py<X.Y>-<key>``; the key hashes the recipe, the interpreter and what
is installed, so a second finalize of the same project installs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from debugtrace.environments import Environment, Progress
from debugtrace.environments.interpreters import Interpreter, choose_interpreter
from debugtrace.environments.pydeps import (
    Dependencies,
    ProjectMeta,
    norm_name,
    pip_env,
    read_dependencies,
    read_project_meta,
    tail,
)
from debugtrace.errors import EnvBuildError

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.sandbox import ProjectSpec

__all__ = ["build_python", "find_uv", "site_packages"]

RECIPE = "py-env-2"
"""Bump when what goes into an environment changes in a way the key does not capture."""
COMPLETE = ".debugtrace-complete"
_UV_ENV = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_CACHE_DIR")


def find_uv() -> str | None:
    """The uv binary: the ``uv`` package's, else ``uv`` on ``PATH``; None when neither."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def site_packages(venv: Path, interp: Interpreter) -> Path:
    """The ``site-packages`` folder of ``venv`` made from ``interp``."""
    return venv / "lib" / f"python{interp.short}" / "site-packages"


def _key(
    interp: Interpreter, deps: Dependencies, requirements: list[str], meta: ProjectMeta
) -> str:
    h = hashlib.sha256()
    doc = {
        "recipe": RECIPE,
        "python": [interp.path, interp.full],
        "requirements": requirements,
        "constraints": deps.constraints,
        "optional": deps.optional,
        "runtime": sorted(deps.runtime),  # decides which dependencies may be left out
        "project": [meta.name, meta.version, meta.entry_points],
    }
    h.update(json.dumps(doc, sort_keys=True).encode())
    return h.hexdigest()


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress(text)


def build_python(
    worktree: Path, project: ProjectSpec, settings: Settings, progress: Progress | None = None
) -> Environment:
    """The test environment of the Python project in ``worktree``, built unless present.

    Raises :class:`EnvBuildError` when no interpreter fits ``requires-python`` or the
    dependencies cannot be installed (the installer's error lines, bounded).
    """
    from filelock import FileLock

    root = Path(worktree).resolve()
    deps = read_dependencies(root, project.dependency_files)
    meta = read_project_meta(root)
    interp = choose_interpreter(meta.requires_python, settings.python)
    requirements = list(deps.requirements)
    # pytest runs the tests (and so its plugins load) unless the project runs under unittest:
    # then its environment is what tox gives it (pytest would bring packages that change it)
    if project.report_format != "unittest" and "pytest" not in map(_name_of, requirements):
        requirements.append("pytest")
    key = _key(interp, deps, requirements, meta)
    path = Path(settings.data_dir).resolve() / "envs" / "python" / f"py{interp.short}-{key[:16]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        done = path / COMPLETE
        reused = done.is_file()
        if not reused:
            shutil.rmtree(path, ignore_errors=True)  # a build that did not finish
            start = time.monotonic()
            notes = _build(path, interp, deps, requirements, meta, settings, progress)
            info = {
                "pins": _freeze(path, interp),
                "notes": notes,
                "python": interp.path,
                "seconds": round(time.monotonic() - start, 1),
            }
            done.write_text(json.dumps(info, indent=1))
        info = json.loads(done.read_text())
    pins = tuple(str(p) for p in info.get("pins", []))
    what = "reused" if reused else f"built in {info.get('seconds', 0)}s"
    said = "; ".join(str(n) for n in info.get("notes", []))
    env_root = "{workspace}" if meta.import_root == "." else "{workspace}/" + meta.import_root
    binds = [path] + ([] if interp.prefix.startswith("/usr/") else [Path(interp.prefix)])
    return Environment(
        kind="python",
        key=key,
        path=path,
        description=(
            f"python {interp.full} ({interp.path}); env {path.name} ({what}), "
            f"{len(pins)} packages; {meta.name or 'the project'} from the checkout "
            f"({meta.import_root}) first on sys.path" + (f"; {said}" if said else "")
        ),
        reused=reused,
        python=str(path / "bin" / "python"),
        python_version=interp.short,
        bin_dirs=(str(path / "bin"),),
        env={"PYTHONPATH": env_root, "VIRTUAL_ENV": str(path)},
        binds=tuple(binds),
        pins=pins,
    )


def _installer(settings: Settings) -> tuple[str, str | None]:
    """(``uv`` or ``pip``, uv's path) as configured and found."""
    choice = settings.env_installer
    uv = find_uv() if choice in ("auto", "uv") else None
    if choice == "uv" and uv is None:
        raise EnvBuildError(
            "DEBUGTRACE_ENV_INSTALLER=uv but uv is not installed: pip install uv (or set it to pip)"
        )
    return ("uv", uv) if uv else ("pip", None)


def _env(tmp: str) -> dict[str, str]:
    env = pip_env()
    env.update({k: v for k, v in os.environ.items() if k in _UV_ENV})
    env.update({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "TMPDIR": tmp})
    return env


def _run(argv: list[str], what: str, timeout_s: float, cwd: str) -> None:
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            env=_env(cwd),
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        raise EnvBuildError(f"{what} timed out after {timeout_s:.0f}s") from None
    except OSError as exc:
        raise EnvBuildError(f"{what} could not start: {exc}") from None
    if proc.returncode != 0:
        out = proc.stderr + proc.stdout
        # pip's ERROR lines; uv's "error:" and its indented explanation (after a U+00D7 sign)
        lines = [ln for ln in out.splitlines() if re.match(r"\s*(error|ERROR|\u00d7|\s+\S)", ln)]
        shown = tail("\n".join(lines) or out, 12)
        raise EnvBuildError(f"{what} failed (exit {proc.returncode}):\n{shown}")


def _build(
    path: Path,
    interp: Interpreter,
    deps: Dependencies,
    requirements: list[str],
    meta: ProjectMeta,
    settings: Settings,
    progress: Progress | None,
) -> list[str]:
    """Make the venv, install, put the project in; returns notes for the description."""
    tool, uv = _installer(settings)
    notes: list[str] = []
    timeout = settings.env_timeout_s
    with tempfile.TemporaryDirectory(prefix="debugtrace-env-") as tmp:
        _say(progress, f"creating a Python {interp.full} environment with {tool}: {path.name}")
        if uv:
            _run(
                [uv, "venv", "--no-config", "--no-project", "--python", interp.path, str(path)],
                "uv venv",
                timeout,
                tmp,
            )
        else:
            _run([interp.path, "-m", "venv", "--without-pip", str(path)], "venv", timeout, tmp)
        python = str(path / "bin" / "python")
        cons = Path(tmp) / "constraints.txt"
        cons.write_text("".join(f"{c}\n" for c in deps.constraints))

        def install(reqs: list[str]) -> None:
            req = Path(tmp) / "requirements.txt"
            req.write_text("".join(f"{r}\n" for r in reqs))
            shown = " ".join(reqs)
            _say(progress, f"installing (wheels only): {shown[:300]}")
            if uv:
                # bytecode now: the environment is read-only to the tests, which would
                # otherwise compile every module they import on every run
                argv = [uv, "pip", "install", "--no-config", "--compile-bytecode"]
                argv += ["--python", python]
                argv += ["--only-binary", ":all:", "-r", str(req), "-c", str(cons)]
            else:
                argv = [sys.executable, "-m", "pip", "--python", python, "install"]
                argv += ["--disable-pip-version-check", "--no-input", "--only-binary=:all:"]
                argv += ["-r", str(req), "-c", str(cons)]
            _run(argv, f"{tool} install of the project's dependencies", timeout, tmp)

        if deps.optional:
            try:
                install(requirements + deps.optional)
            except EnvBuildError:
                notes.append("its dev extras could not be installed and were left out")
                _install_test_side(install, requirements, deps, notes)
        else:
            _install_test_side(install, requirements, deps, notes)
        if deps.ignored:
            notes.append("ignored: " + "; ".join(deps.ignored[:5]))
    _put_project(path, interp, meta)
    return notes


_NO_WHEEL = (
    re.compile(r"([A-Za-z0-9][\w.-]*)(?:==\S+)? (?:has|have) no usable wheels"),
    re.compile(r"versions of ([A-Za-z0-9][\w.-]*) have no usable wheels"),
    re.compile(r"satisfies the requirement ([A-Za-z0-9][\w.-]*)"),
)


def _install_test_side(
    install: Callable[[list[str]], None],
    requirements: list[str],
    deps: Dependencies,
    notes: list[str],
) -> None:
    """Install ``requirements``; a *test-only* dependency that has no wheel (the host never
    builds one) is left out, said in ``notes``, and the rest installed. A run-time dependency
    without a wheel fails the build: the verdict would not be about the project's code."""
    reqs = list(requirements)
    for _ in range(5):
        try:
            install(reqs)
            return
        except EnvBuildError as exc:
            names = {norm_name(m) for rx in _NO_WHEEL for m in rx.findall(str(exc))}
            drop = [r for r in reqs if _name_of(r) in names and _name_of(r) not in deps.runtime]
            if not drop or _name_of(drop[0]) == "pytest":
                raise
            notes.append(
                "left out (test dependencies with no wheel): "
                + ", ".join(_name_of(r) for r in drop)
            )
            reqs = [r for r in reqs if r not in drop]
    install(reqs)


def _name_of(spec: str) -> str:
    return norm_name(re.split(r"[\s\[<>=!~;(@]", spec, maxsplit=1)[0])


def _put_project(path: Path, interp: Interpreter, meta: ProjectMeta) -> None:
    """Remove any installed copy of the project and add a ``.dist-info`` for the checkout."""
    site = site_packages(path, interp)
    if not meta.name:
        return
    name = norm_name(meta.name)
    for info in site.glob("*.dist-info"):
        if norm_name(info.name.removesuffix(".dist-info").split("-", 1)[0]) == name:
            _remove_distribution(site, info)
    dist = site / f"{re.sub(r'[-.]+', '_', meta.name)}-{meta.version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta.name}\nVersion: {meta.version}\n"
    )
    (dist / "INSTALLER").write_text("debugtrace\n")
    (dist / "RECORD").write_text("")
    if meta.entry_points:
        text = "".join(
            f"[{group}]\n" + "".join(f"{n} = {v}\n" for n, v in sorted(items.items())) + "\n"
            for group, items in sorted(meta.entry_points.items())
        )
        (dist / "entry_points.txt").write_text(text)


def _remove_distribution(site: Path, info: Path) -> None:
    """Uninstall the distribution ``info`` describes, by its RECORD: files and then emptied
    folders, each only once it resolves inside ``site`` (a RECORD is a wheel's text)."""
    root = site.resolve()
    record = info / "RECORD"
    lines = record.read_text(errors="replace").splitlines()[:100_000] if record.is_file() else []
    folders: set[Path] = set()
    for line in lines:
        target = (site / line.split(",", 1)[0]).resolve()
        if not target.is_relative_to(root) or target == root:
            continue
        if target.is_file():
            target.unlink()
        if target.parent != root:
            folders.add(target.parent)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        # the bytecode the installer compiled is not in the RECORD
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    shutil.rmtree(info, ignore_errors=True)


_PIN_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,200}[A-Za-z0-9])?")


def _pin(name: str, version: str) -> str | None:
    """``name==version`` when both are what PEP 503 and PEP 440 allow, else None: a wheel may
    install extra ``.dist-info`` folders whose METADATA says anything (``-r /etc/shadow``), and
    pins reach another installer's requirements file."""
    from packaging.version import InvalidVersion, Version

    if not _PIN_NAME.fullmatch(name):
        return None
    try:
        return f"{name}=={Version(version)}"
    except InvalidVersion:
        return None


def _freeze(path: Path, interp: Interpreter) -> list[str]:
    """``name==version`` of every distribution in the environment, from its dist-infos."""
    pins = []
    for info in sorted(site_packages(path, interp).glob("*.dist-info")):
        meta = info / "METADATA"
        installer = info / "INSTALLER"
        if not meta.is_file() or (installer.is_file() and installer.read_text() == "debugtrace\n"):
            continue  # the project itself: every sandbox adds it from the checkout
        fields = dict(
            re.findall(r"^(Name|Version): (.+)$", meta.read_text(errors="replace")[:4000], re.M)
        )
        pin = _pin(fields.get("Name", "").strip(), fields.get("Version", "").strip())
        if pin is not None:
            pins.append(pin)
    return pins
