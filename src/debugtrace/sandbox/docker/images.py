"""The docker sandbox's images: the sandbox image and per-project environment images.

Two layers, like SWE-bench's base/env images (nothing is ever pulled from a registry unless the
base image itself is missing and the engine can reach one):

``build_sandbox_image`` (``debugtrace sandbox build``)
    ``debugtrace-python:3.11``: a venv in ``/opt/venv`` with pytest, ``/opt/venv/bin`` first on
    ``PATH``, a user ``sandbox`` (uid 1000, home ``/home/sandbox``). Built ``FROM`` the image
    ``scripts/build-base-image.sh`` makes from Debian (``debugtrace-base:bookworm``) when the engine
    has it, else ``FROM python:3.11-slim``. The package-level twin of that script's second step.

``ensure_env_image``
    ``debugtrace-env:py-<key>``: ``FROM`` the sandbox image plus the project's dependencies, for a
    Python project with dependency files. ``DockerSandbox.prepare`` runs the tests in it.

Python packages are downloaded as wheels on the host (``python -m pip download --only-binary=:all:
--python-version 3.11``: pip inside a container has no network, and the host's pip has the host's
index and CA settings), copied into the build context and installed with ``pip install --no-index``.
Tests then run without network.

Every image carries a label ``debugtrace.key``, a hash of what went into it (the recipe, the
packages or dependency files, the base image's ID); an image whose key matches is reused as is.
Builds use the engine's classic builder (docker-py's ``/build`` API; no BuildKit/buildx needed).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from debugtrace.environments.pydeps import (
    MAX_DEPENDENCY_FILE_BYTES,
    Dependencies,
    is_dependency_file,
    pip_env,
    project_requirements,
    read_contained,
    read_dependencies,
    tail,
)
from debugtrace.errors import DependencyRefused, SandboxError
from debugtrace.sandbox import ProjectSpec

__all__ = [
    "BASE_IMAGE",
    "ENV_REPO",
    "KEY_LABEL",
    "MAX_DEPENDENCY_FILE_BYTES",
    "SANDBOX_IMAGE",
    "SLIM_IMAGE",
    "Dependencies",
    "build_sandbox_image",
    "ensure_env_image",
    "pip_download",
    "pip_env",
    "project_requirements",
    "read_dependencies",
]

Progress = Callable[[str], None]

SANDBOX_IMAGE = "debugtrace-python:3.11"
BASE_IMAGE = "debugtrace-base:bookworm"
"""What ``scripts/build-base-image.sh`` makes offline from Debian's packages."""
SLIM_IMAGE = "python:3.11-slim"
"""The fallback base, for engines that can pull from Docker Hub."""
ENV_REPO = "debugtrace-env"
KEY_LABEL = "debugtrace.key"
PYTHON_VERSION = "3.11"
"""The Python of every base above (Debian bookworm's python3, python:3.11-slim)."""
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKDIR = "/workspace"

PIP_DOWNLOAD_TIMEOUT_S = 1800.0
_RECIPE = "v1"
"""Bump when the generated Dockerfiles change in a way the keys do not capture."""

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _docker() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - the docker extra is missing
        raise SandboxError(
            "building sandbox images needs the docker SDK: "
            "pip install 'debugtrace-collector[docker]'"
        ) from exc
    return docker


def _lock(tag: str) -> threading.Lock:
    """One build per tag at a time in this process (parallel finalize jobs share env images)."""
    with _locks_guard:
        return _locks.setdefault(tag, threading.Lock())


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _image(client: Any, ref: str) -> Any | None:
    """The image ``ref`` if the engine has it, else None (never pulls)."""
    docker = _docker()
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, OSError) as exc:
        raise SandboxError(f"cannot look up image {ref!r}: {exc}") from exc


def _key_of(image: Any) -> str | None:
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    key = labels.get(KEY_LABEL)
    return str(key) if key is not None else None


def _sha256(parts: Iterable[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))  # unambiguous concatenation
        h.update(data)
    return h.hexdigest()


def _pip_errors(output: str) -> str:
    """What of pip's output goes into an error message: its ``ERROR:`` lines, bounded (pip only
    ever reads specifiers debugtrace wrote, but its other lines describe the host's index)."""
    errors = [ln for ln in output.splitlines() if ln.startswith("ERROR:")]
    return tail("\n".join(errors) or "(pip printed no ERROR line)", 10)


def pip_download(
    requirements: Sequence[str],
    dest: Path,
    *,
    progress: Progress | None,
    constraints: Sequence[str] = (),
) -> None:
    """Download wheels for ``requirements`` (requirement specifiers) into ``dest`` with the
    host's pip, for CPython 3.11 on the host's platform: binary wheels only (nothing is built or
    run on the host), in a scrubbed environment (:func:`pip_env`). ``constraints`` are
    specifiers too. Raises :class:`SandboxError` with pip's bounded ``ERROR:`` lines when pip
    fails (e.g. a package that is not on the index, or has no wheel)."""
    reqfile = dest.parent / f"{dest.name}-requirements.txt"
    reqfile.write_text("".join(f"{r}\n" for r in requirements))
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--dest",
        str(dest),
        "-r",
        str(reqfile),
    ]
    if constraints:
        confile = dest.parent / f"{dest.name}-constraints.txt"
        confile.write_text("".join(f"{c}\n" for c in constraints))
        argv += ["-c", str(confile)]
    shown = " ".join(requirements)
    if len(shown) > 300:
        shown = shown[:300] + " ..."
    _say(progress, f"pip download --only-binary=:all: --python-version {PYTHON_VERSION}: {shown}")
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PIP_DOWNLOAD_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=pip_env(),
            cwd=dest.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(
            f"pip download timed out after {PIP_DOWNLOAD_TIMEOUT_S:.0f} s for: {shown}"
        ) from exc
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        if "No module named pip" in out:
            raise SandboxError(
                f"{sys.executable} has no pip, which debugtrace needs to download wheels for the "
                "sandbox images: install pip into this Python"
            )
        raise SandboxError(
            f"pip download failed (exit {proc.returncode}) for: {shown}\n{_pip_errors(out)}"
        )


def _build(
    client: Any,
    context: Path,
    tag: str,
    key: str,
    progress: Progress | None,
    what: str,
) -> Any:
    """Build ``context`` (its Dockerfile) into ``tag`` with the classic builder; the image."""
    docker = _docker()
    log: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            labels={KEY_LABEL: key},
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise SandboxError(
                    f"docker build of {what} failed: {str(detail).strip()}\n{tail(''.join(log))}"
                )
            text = chunk.get("stream")
            if text:
                log.append(str(text))
                line = str(text).strip()
                if line and progress is not None and line.startswith("Step "):
                    progress(f"  {line}")
    except (docker.errors.DockerException, OSError) as exc:
        raise SandboxError(f"docker build of {what} failed: {exc}") from exc
    image = _image(client, tag)
    if image is None:  # pragma: no cover - the engine said it built it
        raise SandboxError(f"docker build of {what} ended without an image {tag!r}")
    return image


# -- the sandbox image -------------------------------------------------------------------------


def _sandbox_dockerfile(base: str) -> str:
    return f"""\
FROM {base}
USER root
COPY requirements.txt /tmp/build/requirements.txt
COPY wheels/ /tmp/build/wheels/
RUN PY="$(command -v python3 || command -v python)" \\
 && "$PY" -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \\
        --find-links /tmp/build/wheels -r /tmp/build/requirements.txt \\
 && rm -rf /tmp/build \\
 && (id -u sandbox >/dev/null 2>&1 || useradd --uid 1000 --user-group --create-home \\
        --home-dir /home/sandbox --shell /bin/bash sandbox)
ENV PATH=/opt/venv/bin:{SYS_PATH} \\
    VIRTUAL_ENV=/opt/venv \\
    LANG=C.UTF-8 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/sandbox
CMD ["python3"]
"""


def build_sandbox_image(
    client: Any,
    *,
    tag: str = SANDBOX_IMAGE,
    base: str | None = None,
    packages: Sequence[str] = ("pytest",),
    progress: Progress | None = print,
) -> str:
    """Build the sandbox image ``tag`` (venv ``/opt/venv`` with ``packages``, user ``sandbox``
    uid 1000) and return ``tag``; reused as is when present with the same key.

    The base is ``base`` if given; else ``debugtrace-base:bookworm`` when the engine has it (see
    ``scripts/build-base-image.sh``); else ``python:3.11-slim``, which the engine pulls if it can
    reach a registry. Raises :class:`SandboxError` naming what is missing.
    """
    chosen = base
    if chosen is None:
        chosen = BASE_IMAGE if _image(client, BASE_IMAGE) is not None else SLIM_IMAGE
    base_image = _image(client, chosen)
    dockerfile = _sandbox_dockerfile(chosen)
    requirements = "".join(f"{p}\n" for p in packages if p.strip())
    # a base that is not here yet (to be pulled) is keyed by name; once present, by its ID
    base_ref = str(base_image.id) if base_image is not None else chosen
    key = _sha256(["sandbox", _RECIPE, dockerfile, requirements, base_ref])[:16]
    with _lock(tag):
        present = _image(client, tag)
        if present is not None and _key_of(present) == key:
            _say(progress, f"{tag} is present (key {key}); nothing to build")
            return tag
        with tempfile.TemporaryDirectory(prefix="debugtrace-build-") as tmp:
            ctx = Path(tmp)
            (ctx / "Dockerfile").write_text(dockerfile)
            (ctx / "requirements.txt").write_text(requirements)
            wheels = ctx / "wheels"
            wheels.mkdir()
            if requirements:
                pip_download(list(packages), wheels, progress=progress)
            n = len(list(wheels.glob("*.whl")))
            _say(progress, f"docker build {tag} FROM {chosen} ({n} wheels)")
            try:
                _build(client, ctx, tag, key, progress, tag)
            except SandboxError as exc:
                if base_image is None:
                    raise SandboxError(_no_base_message(chosen, base, exc)) from exc
                raise
    _say(progress, f"built {tag} (key {key})")
    return tag


def _no_base_message(chosen: str, base: str | None, exc: SandboxError) -> str:
    reason = str(exc).splitlines()[0]
    if base is None:
        return (
            f"no base image: the engine has neither {BASE_IMAGE} nor {SLIM_IMAGE} ({reason}); "
            "run scripts/build-base-image.sh (offline Debian) or make python:3.11-slim available"
        )
    return (
        f"base image {chosen!r} is missing from the engine and could not be pulled ({reason}); "
        "build it, load it (docker load) or pick another base"
    )


# -- environment images ------------------------------------------------------------------------


def _env_dockerfile(base_tag: str, pythonpath: str, has_wheels: bool) -> str:
    lines = [f"FROM {base_tag}", "USER root"]
    if has_wheels:
        lines += [
            "COPY wheels/ /tmp/build/wheels/",
            "RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \\",
            "        --no-index --find-links /tmp/build/wheels /tmp/build/wheels/*.whl \\",
            " && rm -rf /tmp/build",
        ]
    lines.append(f"ENV PYTHONPATH={pythonpath}")
    return "\n".join(lines) + "\n"


def ensure_env_image(
    client: Any,
    base_tag: str,
    worktree: Path,
    project: ProjectSpec,
    progress: Progress | None = None,
) -> str:
    """The image to run ``project``'s tests in: ``base_tag`` plus its dependencies.

    For a ``python`` project with dependency files (``requirements*.txt``, ``pyproject.toml``,
    ``setup.py``, ``setup.cfg``), the image ``debugtrace-env:py-<key[:16]>`` where the key hashes
    the base image's ID, the kind and the name and content of each dependency file. It is built
    when missing: wheels downloaded on the host (:func:`read_dependencies` says what is read)
    and installed into ``/opt/venv`` at build time, and ``PYTHONPATH`` set to
    ``/workspace/src:/workspace`` (src layout) or ``/workspace``, so the source is importable
    without installing the project. Otherwise returns ``base_tag`` unchanged.

    Dependency files are untrusted data (:func:`read_dependencies`): only requirement specifiers
    reach the host's pip, which runs in a scrubbed environment. Raises :class:`SandboxError`
    when the base is missing, pip cannot download a dependency (pip's bounded ``ERROR:`` lines)
    or the build fails.
    """
    worktree = Path(worktree)
    if project.kind != "python":
        return base_tag
    root = worktree.resolve()
    contents: dict[str, bytes] = {}
    for rel in project.dependency_files:
        if not is_dependency_file(rel):
            continue
        try:  # never follow a symlink out of the checkout, nor read a device or FIFO
            contents[rel] = read_contained(root, root / rel)
        except DependencyRefused:
            continue
    if not contents:
        return base_tag
    files = list(contents)
    base = _image(client, base_tag)
    if base is None:
        raise SandboxError(
            f"Docker image {base_tag!r} is missing from the engine: build it with "
            "`debugtrace sandbox build` or scripts/build-base-image.sh"
        )
    pythonpath = f"{WORKDIR}/src:{WORKDIR}" if (root / "src").is_dir() else WORKDIR
    deps = read_dependencies(root, files)
    parts: list[str | bytes] = ["env", _RECIPE, str(base.id), project.kind, pythonpath]
    for rel in files:
        parts += [rel, contents[rel]]
    # what was read through -r/-c includes counts too
    parts += ["requirements", *deps.requirements, "constraints", *deps.constraints]
    key = _sha256(parts)
    tag = f"{ENV_REPO}:py-{key[:16]}"
    with _lock(tag):
        present = _image(client, tag)
        if present is not None and _key_of(present) == key:
            return tag
        if deps.ignored:
            _say(progress, "ignored in the dependency files: " + "; ".join(deps.ignored[:10]))
        with tempfile.TemporaryDirectory(prefix="debugtrace-env-") as tmp:
            ctx = Path(tmp)
            wheels = ctx / "wheels"
            wheels.mkdir()
            if deps.requirements:
                pip_download(
                    deps.requirements, wheels, progress=progress, constraints=deps.constraints
                )
            has_wheels = any(wheels.glob("*.whl"))
            (ctx / "Dockerfile").write_text(_env_dockerfile(base_tag, pythonpath, has_wheels))
            _say(
                progress, f"docker build {tag} FROM {base_tag} (dependencies of {', '.join(files)})"
            )
            _build(client, ctx, tag, key, progress, f"the environment image {tag}")
    return tag
