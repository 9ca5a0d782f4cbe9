"""The docker sandbox's images: the sandbox image, and run images made from a project's
environment (:mod:`debugtrace.environments`, the one builder both sandboxes use).

Nothing is ever pulled from a registry (unless the base image itself is missing and the engine can
reach one), and nothing here reads a project's dependency files: the environment builder did,
on the host, and the images install exactly what it pinned.

``build_sandbox_image`` (``debugtrace sandbox build``)
    ``debugtrace-python:3.11``: a venv in ``/opt/venv`` with pytest, ``/opt/venv/bin`` first on
    ``PATH``, a user ``sandbox`` (uid 1000, home ``/home/sandbox``). Built ``FROM`` the image
    ``scripts/build-base-image.sh`` makes from Debian (``debugtrace-base:bookworm``) when the engine
    has it, else ``FROM python:3.11-slim``. The package-level twin of that script's second step.

:func:`image_for` (what ``DockerSandbox.prepare`` calls), by the project's environment:

``python``: ``debugtrace-env:py-<key>``
    ``FROM`` the sandbox image, a fresh venv ``/opt/env`` holding exactly the environment's
    :attr:`~debugtrace.environments.Environment.pins` (wheels downloaded on the host for the
    image's Python with ``pip download --only-binary=:all: --no-deps``, installed with
    ``--no-index --no-deps``) plus the project's own ``.dist-info`` copied from the host
    environment (the one whose ``INSTALLER`` says ``debugtrace``: it stands for an editable
    install of the checkout, so entry points and pytest plugins of the project are found). Runs
    get ``PATH=/opt/env/bin:<system>``, ``VIRTUAL_ENV=/opt/env`` and the environment's variables
    with ``{workspace}`` made ``/workspace`` (``PYTHONPATH``: the checkout first on
    ``sys.path``). The image's Python is the sandbox image's (Debian bookworm's 3.11): when the
    host environment used another version the pins are tried for 3.11 and the run's note says
    so; a pin with no wheel for it is an :class:`EnvBuildError` naming it.
``node``: ``debugtrace-node:<key>``
    ``FROM`` the sandbox image plus Debian's ``nodejs`` (and the libraries it needs that the
    image lacks), from ``.deb`` files ``apt-get download``-ed on the host and ``dpkg -i``-ed at
    build time; the version is the one of the image's Debian release (bookworm: 18.x). An image
    that already has ``node`` is used as it is. The environment's ``node_modules`` is not in the
    image: the sandbox copies it into the workspace (:attr:`RunImage.links`), and runs get
    ``/workspace/node_modules/.bin`` first on ``PATH``.
no environment
    The sandbox image itself (a plugin calling the sandbox directly, a project kind without
    environments).

Every image carries a label ``debugtrace.key``, a hash of what went into it (the recipe, the
pins and the project's dist-info, the base image's ID); an image whose key matches is reused as
is, never rebuilt. The node image is keyed by its base alone: Debian's newer ``nodejs`` builds
reach it when the base image is rebuilt. Builds use the engine's classic builder (docker-py's
``/build`` API; no BuildKit/buildx needed). Python packages are downloaded on the host (pip
inside a container has no network, and the host's pip has the host's index and CA settings), in
a scrubbed environment (:func:`pip_env`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from debugtrace.environments.pydeps import (
    MAX_DEPENDENCY_FILE_BYTES,
    Dependencies,
    norm_name,
    pip_env,
    project_requirements,
    read_dependencies,
    tail,
)
from debugtrace.errors import EnvBuildError, SandboxError
from debugtrace.sandbox import ProjectSpec

if TYPE_CHECKING:
    from debugtrace.environments import Environment

__all__ = [
    "BASE_IMAGE",
    "ENV_PREFIX",
    "ENV_REPO",
    "KEY_LABEL",
    "MAX_DEPENDENCY_FILE_BYTES",
    "NODE_REPO",
    "SANDBOX_IMAGE",
    "SLIM_IMAGE",
    "Dependencies",
    "RunImage",
    "build_sandbox_image",
    "ensure_env_image",
    "image_for",
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
NODE_REPO = "debugtrace-node"
KEY_LABEL = "debugtrace.key"
PYTHON_LABEL = "debugtrace.python"
"""``major.minor`` of the Python an environment image's venv runs."""
HOST_PYTHON_LABEL = "debugtrace.host-python"
"""``major.minor`` of the host environment whose pins an environment image installed."""
NODE_LABEL = "debugtrace.node"
"""The Debian version of ``nodejs`` a node image holds."""
PYTHON_VERSION = "3.11"
"""The Python of every base above (Debian bookworm's python3, python:3.11-slim)."""
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKDIR = "/workspace"
ENV_PREFIX = "/opt/env"
"""Where an environment image's venv lives."""

PIP_DOWNLOAD_TIMEOUT_S = 1800.0
APT_TIMEOUT_S = 900.0
MAX_DIST_INFO_BYTES = 4 * 1024**2
"""Largest file of the project's dist-info copied into an image (they are a few hundred bytes)."""
_RECIPE = "v1"
"""Bump when the generated Dockerfiles change in a way the keys do not capture."""
_ENV_RECIPE = "py-env-image-2"
_NODE_RECIPE = "node-image-1"

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
    python_version: str = PYTHON_VERSION,
    no_deps: bool = False,
) -> None:
    """Download wheels for ``requirements`` (requirement specifiers) into ``dest`` with the
    host's pip, for CPython ``python_version`` on the host's platform: binary wheels only
    (nothing is built or run on the host), in a scrubbed environment (:func:`pip_env`).
    ``constraints`` are specifiers too; ``no_deps`` downloads exactly what is named. Raises
    :class:`SandboxError` with pip's bounded ``ERROR:`` lines when pip fails (e.g. a package
    that is not on the index, or has no wheel)."""
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
        python_version,
        "--implementation",
        "cp",
        "--dest",
        str(dest),
        "-r",
        str(reqfile),
    ]
    if no_deps:
        argv.append("--no-deps")
    if constraints:
        confile = dest.parent / f"{dest.name}-constraints.txt"
        confile.write_text("".join(f"{c}\n" for c in constraints))
        argv += ["-c", str(confile)]
    shown = " ".join(requirements)
    if len(shown) > 300:
        shown = shown[:300] + " ..."
    _say(progress, f"pip download --only-binary=:all: --python-version {python_version}: {shown}")
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
    labels: Mapping[str, str] | None = None,
) -> Any:
    """Build ``context`` (its Dockerfile) into ``tag`` with the classic builder; the image."""
    docker = _docker()
    log: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            labels={**(labels or {}), KEY_LABEL: key},
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


# -- run images: what a project's environment needs ---------------------------------------------


@dataclass(frozen=True)
class RunImage:
    """The image a project's commands run in, and what the sandbox adds to each run."""

    tag: str
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables of every run (``PATH``, ``VIRTUAL_ENV``, the environment's own) as the command
    sees them: ``{workspace}`` is ``/workspace``."""
    python: str | None = None
    """The environment's interpreter in the image (``{python}``), if it has one."""
    links: Mapping[str, Path] = field(default_factory=dict)
    """Host folders the sandbox copies into the workspace under these names (``node_modules``)."""
    note: str = ""
    """One line for people: which image (built or reused), which Python or Node."""
    warning: str = ""
    """What may make a verdict differ from the local sandbox's (another Python version)."""


def image_for(
    client: Any, base_tag: str, project: ProjectSpec, progress: Progress | None = None
) -> RunImage:
    """The image ``project``'s commands run in, built from ``base_tag`` when missing (see the
    module doc), with what each run gets. Raises :class:`SandboxError` naming what is missing
    and what to do, :class:`EnvBuildError` when the environment's pins do not fit the image."""
    env = project.environment
    if env is not None and env.kind == "python":
        return _python_env_image(client, base_tag, env, progress)
    if project.kind == "node" or (env is not None and env.kind == "node"):
        return _node_image(client, base_tag, env, progress)
    if env is None:
        return RunImage(base_tag)
    base = _require(client, base_tag)  # another kind: its variables and links, no image of its own
    return RunImage(base_tag, _run_env(env, _image_path(base)), links=dict(env.links))


def ensure_env_image(
    client: Any,
    base_tag: str,
    worktree: Path,
    project: ProjectSpec,
    progress: Progress | None = None,
) -> str:
    """The tag of :func:`image_for`: ``base_tag`` itself for a project without an environment
    (the client is not touched then). ``worktree`` is not read: the environment builder read
    the project's dependency files, on the host, once for both sandboxes."""
    del worktree
    return image_for(client, base_tag, project, progress).tag


def _require(client: Any, tag: str) -> Any:
    image = _image(client, tag)
    if image is None:
        raise SandboxError(
            f"Docker image {tag!r} is missing from the engine: build it with "
            "`debugtrace sandbox build` or scripts/build-base-image.sh"
        )
    return image


def _labels(image: Any) -> dict[str, str]:
    return dict((image.attrs.get("Config") or {}).get("Labels") or {})


def _image_path(image: Any) -> str:
    """The ``PATH`` the image sets (the sandbox image's puts ``/opt/venv/bin`` first)."""
    for item in (image.attrs.get("Config") or {}).get("Env") or []:
        if str(item).startswith("PATH="):
            return str(item)[5:]
    return SYS_PATH


def _in_workspace(value: str) -> str:
    return value.replace("{workspace}", WORKDIR)


def _run_env(env: Environment, rest: str, first: Sequence[str] = ()) -> dict[str, str]:
    """The environment's variables as a run in the image sees them; ``PATH`` is ``first``, its
    folders inside the workspace (host folders do not exist in the image), then ``rest``."""
    variables = {k: _in_workspace(v) for k, v in env.env.items()}
    dirs = [*first, *(_in_workspace(d) for d in env.bin_dirs if d.startswith("{workspace}"))]
    variables["PATH"] = ":".join([*dirs, rest])
    return variables


@dataclass(frozen=True)
class _Probe:
    """What an image has: its Python (``major.minor``), Debian release, node, dpkg packages."""

    python: str
    codename: str
    node: str
    packages: frozenset[str]


_PROBE_SCRIPT = r"""
echo "python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
. /etc/os-release 2>/dev/null; echo "codename=${VERSION_CODENAME:-}"
echo "node=$(node --version 2>/dev/null)"
dpkg-query -W -f 'package=${Package}\n' 2>/dev/null
true
"""
_probes: dict[str, _Probe] = {}


def _probe(client: Any, image: Any, tag: str) -> _Probe:
    """Look inside ``image`` once (a container without network; cached by image ID)."""
    found = _probes.get(str(image.id))
    if found is not None:
        return found
    docker = _docker()
    try:
        out = client.containers.run(
            str(image.id),
            ["sh", "-c", _PROBE_SCRIPT],
            network_mode="none",
            labels={"debugtrace": "1"},
            remove=True,
            stdout=True,
            stderr=False,
        )
    except (docker.errors.DockerException, OSError) as exc:
        raise SandboxError(f"could not look inside the image {tag!r}: {exc}") from exc
    values: dict[str, str] = {}
    packages: set[str] = set()
    for line in bytes(out).decode(errors="replace").splitlines():
        name, _, value = line.partition("=")
        if name == "package":
            packages.add(value.split(":", 1)[0].strip())
        else:
            values[name] = value.strip()
    found = _Probe(
        python=values.get("python", ""),
        codename=values.get("codename", ""),
        node=values.get("node", ""),
        packages=frozenset(packages),
    )
    _probes[str(image.id)] = found
    return found


# -- python: the environment's pins in /opt/env -------------------------------------------------

_PIN = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9._-]{0,200}[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}"
)


def _dist_info(env: Environment) -> dict[str, bytes]:
    """The project's own ``.dist-info`` in the host environment (``INSTALLER`` says
    ``debugtrace``): its files by ``<name>.dist-info/<file>``."""
    files: dict[str, bytes] = {}
    for site in sorted(Path(env.path).glob("lib/python*/site-packages")):
        for info in sorted(site.glob("*.dist-info")):
            installer = info / "INSTALLER"
            if installer.is_symlink() or not installer.is_file():
                continue
            if installer.read_bytes().strip() != b"debugtrace":
                continue
            for f in sorted(info.iterdir()):
                if f.is_symlink() or not f.is_file():
                    continue
                if f.stat().st_size > MAX_DIST_INFO_BYTES:
                    raise EnvBuildError(f"{f} is larger than {MAX_DIST_INFO_BYTES} bytes")
                files[f"{info.name}/{f.name}"] = f.read_bytes()
    return files


_ENV_INSTALL = """\
#!/bin/sh
# the environment's pins into a fresh venv, with the pip beside the image's python3 (pip's
# --python) when it has one, else with the venv's own pip, removed again afterwards
set -eu
python3 -m venv --without-pip {prefix}
if python3 -m pip --python {prefix}/bin/python --version >/dev/null 2>&1; then
    pip() {{ python3 -m pip --python {prefix}/bin/python "$@"; }}
    drop=""
else
    {prefix}/bin/python -m ensurepip --default-pip >/dev/null
    pip() {{ {prefix}/bin/python -m pip "$@"; }}
    drop="{drop}"
fi
if ls /tmp/build/wheels/*.whl >/dev/null 2>&1; then
    pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \\
        /tmp/build/wheels/*.whl
fi
site="$({prefix}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -R /tmp/build/project/. "$site/"
if [ -n "$drop" ]; then pip uninstall --yes --disable-pip-version-check $drop; fi
"""


def _env_dockerfile(base_tag: str) -> str:
    return (
        f"FROM {base_tag}\nUSER root\nCOPY . /tmp/build/\n"
        "RUN sh /tmp/build/install.sh && rm -rf /tmp/build\n"
        f"ENV PATH={ENV_PREFIX}/bin:{SYS_PATH} VIRTUAL_ENV={ENV_PREFIX}\n"
    )


def _python_env_image(
    client: Any, base_tag: str, env: Environment, progress: Progress | None
) -> RunImage:
    base = _require(client, base_tag)
    # pins go into pip's requirements file: exactly `name==version`, nothing pip could read
    # as an option, a URL, a path or a comment
    pins = sorted(p for p in set(env.pins) if _PIN.fullmatch(p))
    dist = _dist_info(env)
    parts: list[str | bytes] = ["py-env", _ENV_RECIPE, str(base.id), "pins", *pins, "dist-info"]
    for rel in sorted(dist):
        parts += [rel, dist[rel]]
    key = _sha256(parts)
    tag = f"{ENV_REPO}:py-{key[:16]}"
    with _lock(tag):
        image = _image(client, tag)
        state = "reused"
        if image is None or _key_of(image) != key:
            image = _build_python_env(client, base_tag, base, env, pins, dist, (tag, key), progress)
            state = "built"
    image_py = _labels(image).get(PYTHON_LABEL) or PYTHON_VERSION
    note = (
        f"docker image {tag} ({state}): Python {image_py}, the environment's {len(pins)} pinned "
        f"packages in {ENV_PREFIX}, the checkout first on sys.path"
    )
    warning = ""
    if env.python_version and env.python_version != image_py:
        warning = (
            f"the environment was built with Python {env.python_version} on the host; the docker "
            f"image runs Python {image_py}, with the same pinned packages installed for it"
        )
        note += f"; {warning}"
    variables = _run_env(env, SYS_PATH, first=(f"{ENV_PREFIX}/bin",))
    variables["VIRTUAL_ENV"] = ENV_PREFIX
    return RunImage(tag, variables, python=f"{ENV_PREFIX}/bin/python", note=note, warning=warning)


def _build_python_env(
    client: Any,
    base_tag: str,
    base: Any,
    env: Environment,
    pins: Sequence[str],
    dist: Mapping[str, bytes],
    tag_key: tuple[str, str],
    progress: Progress | None,
) -> Any:
    tag, key = tag_key
    image_py = _probe(client, base, base_tag).python
    if not image_py:
        raise EnvBuildError(f"the docker image {base_tag!r} has no python3 to make a venv with")
    other = env.python_version and env.python_version != image_py
    with tempfile.TemporaryDirectory(prefix="debugtrace-env-") as tmp:
        ctx = Path(tmp)
        wheels, project = ctx / "wheels", ctx / "project"
        wheels.mkdir()
        project.mkdir()
        for rel, data in dist.items():
            (project / rel).parent.mkdir(exist_ok=True)
            (project / rel).write_bytes(data)
        if pins:
            try:
                pip_download(pins, wheels, progress=progress, python_version=image_py, no_deps=True)
            except SandboxError as exc:
                raise EnvBuildError(
                    f"the environment's pinned packages cannot all be installed in the docker "
                    f"image {base_tag!r}, whose Python is {image_py}"
                    + (f" (the environment was built with {env.python_version})" if other else "")
                    + f": {exc}"
                ) from None
        names = {norm_name(p.split("==", 1)[0]) for p in pins}
        drop = " ".join(n for n in ("pip", "setuptools") if n not in names)
        (ctx / "install.sh").write_text(_ENV_INSTALL.format(prefix=ENV_PREFIX, drop=drop))
        (ctx / "Dockerfile").write_text(_env_dockerfile(base_tag))
        _say(progress, f"docker build {tag} FROM {base_tag} ({len(pins)} packages)")
        labels = {PYTHON_LABEL: image_py, HOST_PYTHON_LABEL: env.python_version or ""}
        return _build(client, ctx, tag, key, progress, f"the environment image {tag}", labels)


# -- node: Debian's nodejs -----------------------------------------------------------------------

NODE_HINT = (
    "the docker sandbox installs Debian's nodejs into its image from .deb files the host "
    "downloads with apt (a reachable Debian mirror with the image's release in apt's sources; "
    "run `apt-get update` when the lists are stale). Otherwise build an image with node FROM "
    f"{SANDBOX_IMAGE} and set DEBUGTRACE_DOCKER_IMAGE to it, or use the local sandbox "
    "(DEBUGTRACE_SANDBOX=local)"
)
_APT_ENV = ("PATH", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def _apt(argv: list[str], what: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k in _APT_ENV}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=APT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{what} timed out after {APT_TIMEOUT_S:.0f}s; {NODE_HINT}") from None
    except OSError as exc:
        raise SandboxError(f"{what} could not start ({exc}); {NODE_HINT}") from None
    if proc.returncode != 0:
        said = tail(proc.stderr.strip() or proc.stdout, 8)
        raise SandboxError(f"{what} failed (exit {proc.returncode}):\n{said}\n{NODE_HINT}")
    return proc.stdout


def _debian_versions(apt_cache: str, names: Sequence[str], codename: str) -> dict[str, str]:
    """The newest version of each package that the image's release (``bookworm``, its
    ``-security`` and ``-updates``; not backports nor other vendors' repositories) has."""
    suites = {codename, f"{codename}-security", f"{codename}-updates"}
    found: dict[str, str] = {}
    out = _apt([apt_cache, "madison", *names], "apt-cache madison")
    for line in (
        out.splitlines()
    ):  # " nodejs | 18.20.4+dfsg-1~deb12u3 | URL bookworm-security/main amd64 Packages"
        parts = [p.strip() for p in line.split("|")]
        words = parts[2].split() if len(parts) >= 3 else []
        if len(words) >= 2 and words[1].split("/")[0] in suites:
            found.setdefault(parts[0], parts[1])  # newest first
    return found


def _depends(apt_cache: str, spec: str) -> set[str]:
    """Every package ``spec`` needs, recursively (no recommends or suggests)."""
    argv = [apt_cache, "depends", "--recurse", "--no-recommends", "--no-suggests"]
    argv += ["--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", spec]
    out = _apt(argv, "apt-cache depends")
    return {
        line.strip().split(":", 1)[0]
        for line in out.splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith("<")
    }


def _node_dockerfile(base_tag: str) -> str:
    return (
        f"FROM {base_tag}\nUSER root\nCOPY debs/ /tmp/build/debs/\n"
        "RUN dpkg -i /tmp/build/debs/*.deb && rm -rf /tmp/build && node --version\n"
    )


def _build_node(
    client: Any, base_tag: str, probe: _Probe, tag_key: tuple[str, str], progress: Progress | None
) -> Any:
    tag, key = tag_key
    apt_get, apt_cache = shutil.which("apt-get"), shutil.which("apt-cache")
    if apt_get is None or apt_cache is None:
        raise SandboxError(f"this host has no apt-get to download Node with; {NODE_HINT}")
    if not probe.codename or not probe.packages:
        raise SandboxError(
            f"the docker image {base_tag!r} is not a Debian image with dpkg, which the docker "
            f"sandbox needs to add Node to it; {NODE_HINT}"
        )
    version = _debian_versions(apt_cache, ["nodejs"], probe.codename).get("nodejs")
    if version is None:
        raise SandboxError(
            f"apt on this host knows no nodejs of Debian {probe.codename} (the release of "
            f"{base_tag!r}); {NODE_HINT}"
        )
    needed = (_depends(apt_cache, f"nodejs={version}") - probe.packages) | {"nodejs"}
    versions = _debian_versions(apt_cache, sorted(needed), probe.codename)
    versions["nodejs"] = version
    if missing := sorted(needed - versions.keys()):
        raise SandboxError(
            f"apt on this host has no Debian {probe.codename} version of {', '.join(missing)}, "
            f"which nodejs needs; {NODE_HINT}"
        )
    with tempfile.TemporaryDirectory(prefix="debugtrace-node-") as tmp:
        ctx = Path(tmp)
        debs = ctx / "debs"
        debs.mkdir()
        os.chmod(tmp, 0o755)  # apt downloads as its own user where it can
        os.chmod(debs, 0o777)
        specs = [f"{n}={v}" for n, v in sorted(versions.items())]
        _say(progress, f"apt-get download (Debian {probe.codename}): {' '.join(specs)}")
        _apt([apt_get, "download", *specs], "apt-get download of nodejs", cwd=debs)
        (ctx / "Dockerfile").write_text(_node_dockerfile(base_tag))
        _say(progress, f"docker build {tag} FROM {base_tag} (nodejs {version})")
        return _build(
            client, ctx, tag, key, progress, f"the node image {tag}", {NODE_LABEL: version}
        )


def _node_image(
    client: Any, base_tag: str, env: Environment | None, progress: Progress | None
) -> RunImage:
    base = _require(client, base_tag)
    key = _sha256(["node", _NODE_RECIPE, str(base.id)])
    tag = f"{NODE_REPO}:{key[:16]}"
    with _lock(tag):
        image = _image(client, tag)
        state = "reused"
        version = _labels(image).get(NODE_LABEL, "") if image is not None else ""
        if image is None or _key_of(image) != key:
            probe = _probe(client, base, base_tag)
            if probe.node:  # an image with node of its own
                image, tag, version, state = base, base_tag, probe.node, "its own node"
            else:
                image = _build_node(client, base_tag, probe, (tag, key), progress)
                version, state = _labels(image).get(NODE_LABEL, ""), "built"
    links = dict(env.links) if env is not None else {}
    note = f"docker image {tag} ({state}): node {version}"
    if links:
        note += f"; {', '.join(links)} copied into the workspace"
    variables = _run_env(env, _image_path(image)) if env is not None else {}
    return RunImage(tag, variables, links=links, note=note)
