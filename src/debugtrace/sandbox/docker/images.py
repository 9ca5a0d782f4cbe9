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

import ast
import configparser
import hashlib
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
_TEST_EXTRAS = ("test", "tests", "testing")
"""Optional-dependency extras (and PEP 735 dependency groups) installed with a project's own
dependencies: what its test suite needs."""

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


def _tail(text: str, lines: int = 20, *, width: int = 300, total: int = 3000) -> str:
    """The last ``lines`` lines of ``text``, each cut at ``width`` characters, at most ``total``
    characters in all: tool output quoted in an error message stays bounded."""
    kept = [ln if len(ln) <= width else ln[:width] + " ..." for ln in text.strip().splitlines()]
    out = "\n".join(kept[-lines:])
    return out if len(out) <= total else "... " + out[-total:]


_PIP_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TMPDIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "NETRC",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    }
)
"""What the host's pip may see of the server's environment: where it runs, its index and
network settings (``PIP_*``, proxies, CA bundles); never API keys, tokens or ``DEBUGTRACE_*``."""


def pip_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``pip download`` runs with: an allow-list of ``environ`` (default: this
    process's), so nothing else of the server's (``OPENAI_API_KEY``, ``DEBUGTRACE_API_TOKEN``,
    database URLs) can reach pip, its messages or what it fetches."""
    env = os.environ if environ is None else environ
    kept = {k: v for k, v in env.items() if k in _PIP_ENV_NAMES or k.startswith("PIP_")}
    kept.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    kept["PIP_NO_INPUT"] = "1"
    kept["PYTHONNOUSERSITE"] = "1"
    return kept


def _pip_errors(output: str) -> str:
    """What of pip's output goes into an error message: its ``ERROR:`` lines, bounded (pip only
    ever reads specifiers debugtrace wrote, but its other lines describe the host's index)."""
    errors = [ln for ln in output.splitlines() if ln.startswith("ERROR:")]
    return _tail("\n".join(errors) or "(pip printed no ERROR line)", 10)


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
                    f"docker build of {what} failed: {str(detail).strip()}\n{_tail(''.join(log))}"
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


MAX_DEPENDENCY_FILE_BYTES = 1024**2
"""Largest dependency file read (requirements, pyproject.toml, setup.cfg, setup.py)."""
MAX_REQUIREMENTS = 1000
"""Most requirement specifiers taken from one project's dependency files."""
_MAX_INCLUDE_DEPTH = 5
_MAX_SPECIFIER_CHARS = 500
_MAX_NOTES = 50
_PER_REQUIREMENT_OPTIONS = re.compile(r"\s+--?[A-Za-z][\w-]*(?:[=\s].*)?$")
"""``--hash=...``, ``--config-settings ...`` after a specifier: pip options, dropped."""


@dataclass
class Dependencies:
    """What a project's dependency files declare, as data: see :func:`read_dependencies`."""

    requirements: list[str] = field(default_factory=list)
    """Normalised requirement specifiers (``name[extras] specifier; marker``), no URLs."""
    constraints: list[str] = field(default_factory=list)
    """Specifiers from ``-c`` constraint files inside the checkout."""
    ignored: list[str] = field(default_factory=list)
    """One short note per file or line not used (``requirements.txt:3: pip option --index-url
    ignored``); it names the place and the reason, never the text."""

    def note(self, where: str, why: str) -> None:
        """Record that something at ``where`` was not used, and why (bounded)."""
        if len(self.ignored) < _MAX_NOTES:
            self.ignored.append(f"{where[:200]}: {why}")


def _requirement_class() -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError as exc:  # pragma: no cover - pytest and pip bring it everywhere
        raise SandboxError(
            "reading a project's dependencies needs the `packaging` library: pip install packaging"
        ) from exc
    return Requirement


def _is_dependency_file(name: str) -> bool:
    base = Path(name).name
    return base in ("pyproject.toml", "setup.py", "setup.cfg") or (
        base.startswith("requirements") and base.endswith(".txt")
    )


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_contained(root: Path, path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file inside ``root`` once every symlink is
    resolved (a checkout may link ``requirements.txt`` to ``/proc/self/environ``, a device or a
    FIFO), of at most :data:`MAX_DEPENDENCY_FILE_BYTES`. Raises :class:`DependencyRefused`."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise DependencyRefused("does not exist") from None
    if not real.is_relative_to(root):
        raise DependencyRefused("is outside the checkout")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise DependencyRefused("cannot be opened") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise DependencyRefused("is not a regular file")
        data = f.read(MAX_DEPENDENCY_FILE_BYTES + 1)
    if len(data) > MAX_DEPENDENCY_FILE_BYTES:
        raise DependencyRefused(f"is larger than {MAX_DEPENDENCY_FILE_BYTES} bytes")
    return data


def _specifier(text: str) -> tuple[str, str]:
    """(normalised name, normalised specifier) of one requirement; raises :class:`DependencyRefused`
    for anything else: options, URLs and paths (``name @ https://...``, ``./pkg``, ``git+...``:
    the host would fetch them), environment variables (pip expands ``${VAR}`` from its own
    environment), and text that is not a PEP 508 specifier."""
    if len(text) > _MAX_SPECIFIER_CHARS:
        raise DependencyRefused(f"longer than {_MAX_SPECIFIER_CHARS} characters")
    if "$" in text:
        raise DependencyRefused("uses an environment variable")
    if any(c not in " \t" and (not c.isprintable() or c.isspace()) for c in text):
        # packaging accepts \f, \v, \x85 and \u2028 inside marker strings; pip splits lines there
        raise DependencyRefused("holds a control or line-separator character")
    Requirement = _requirement_class()
    try:
        req = Requirement(text)
    except Exception:  # InvalidRequirement (a ValueError) and anything odd the parser raises
        raise DependencyRefused("not a requirement specifier") from None
    if req.url:
        raise DependencyRefused("a direct URL or path reference")
    return _norm(req.name), str(req)


def _option(line: str) -> tuple[str, str]:
    """(option, value) of a requirements-file option line (``-r x``, ``-rx``, ``--opt=x``)."""
    short = re.match(r"-([rc])(?!-)\s*(\S.*)?$", line)
    if short:
        return f"-{short.group(1)}", (short.group(2) or "").strip()
    m = re.match(r"(--?[A-Za-z][\w-]*)\s*=?\s*(.*)$", line)
    if m is None:
        return "-", ""
    return m.group(1), m.group(2).strip()


class _Reader:
    """Reads one checkout's dependency files into a :class:`Dependencies`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.deps = Dependencies()
        self.names: set[str] = set()  # the project's own name(s): references to it are dropped
        self.found: list[tuple[str, str, bool]] = []  # (name, specifier, is_constraint)
        self.seen: set[Path] = set()

    def where(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except (ValueError, OSError, RuntimeError):
            return path.name

    def add(self, where: str, text: str, *, constraint: bool = False) -> None:
        if len(self.found) >= MAX_REQUIREMENTS:
            self.deps.note(where, f"more than {MAX_REQUIREMENTS} requirements: the rest ignored")
            return
        try:
            name, spec = _specifier(text.strip())
        except DependencyRefused as why:
            self.deps.note(where, str(why))
            return
        if constraint and re.match(r"[^;\s]*\[", spec):
            self.deps.note(where, "a constraint with extras (pip refuses those)")
            return
        self.found.append((name, spec, constraint))

    def requirements_file(self, path: Path, *, constraint: bool, depth: int) -> None:
        text = _read_contained(self.root, path).decode("utf-8", "replace")
        self.seen.add(path.resolve())
        name = self.where(path)
        text = re.sub(r"\\\r?\n", " ", text)  # continuation lines
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if not line:
                continue
            where = f"{name}:{lineno}"
            if not line.startswith("-"):
                self.add(where, _PER_REQUIREMENT_OPTIONS.sub("", line), constraint=constraint)
                continue
            opt, target = _option(line)
            if opt not in ("-r", "--requirement", "-c", "--constraint") or not target:
                shown = opt if re.fullmatch(r"--?[A-Za-z][\w-]{0,40}", opt) else "option"
                self.deps.note(where, f"pip option {shown} ignored")
                continue
            self.include(
                where, path.parent / target, constraint or opt in ("-c", "--constraint"), depth
            )

    def include(self, where: str, target: Path, constraint: bool, depth: int) -> None:
        if depth >= _MAX_INCLUDE_DEPTH:
            self.deps.note(where, f"include nested deeper than {_MAX_INCLUDE_DEPTH} ignored")
            return
        try:
            if target.resolve() in self.seen:
                return  # already read (a cycle, or included twice)
            self.requirements_file(target, constraint=constraint, depth=depth + 1)
        except DependencyRefused as why:
            self.deps.note(where, f"include ignored: it {why}")
        except (OSError, RuntimeError):
            self.deps.note(where, "include ignored: it cannot be resolved")

    def pyproject(self, path: Path) -> None:
        name = self.where(path)
        try:
            data = tomllib.loads(_read_contained(self.root, path).decode("utf-8", "replace"))
        except tomllib.TOMLDecodeError as exc:  # its message is a position, never the text
            self.deps.note(name, f"not valid TOML ({str(exc)[:100]}): its dependencies ignored")
            return
        project = data.get("project")
        reqs: list[object] = []
        if isinstance(project, dict):
            if isinstance(project.get("name"), str):
                self.names.add(_norm(project["name"]))
            reqs += _list(project.get("dependencies"))
            extras = project.get("optional-dependencies")
            if isinstance(extras, dict):
                for extra in _TEST_EXTRAS:
                    reqs += _list(extras.get(extra))
        groups = data.get("dependency-groups")
        if isinstance(groups, dict):  # PEP 735; {include-group = ...} tables are skipped
            for group in _TEST_EXTRAS:
                reqs += _list(groups.get(group))
        for req in reqs:
            if isinstance(req, str):
                self.add(name, req)

    def setup_cfg(self, path: Path) -> None:
        name = self.where(path)
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string(_read_contained(self.root, path).decode("utf-8", "replace"))
        except configparser.Error as exc:  # its message quotes the file: name the kind only
            line = getattr(exc, "lineno", None)
            at = f" at line {line}" if isinstance(line, int) else ""
            self.deps.note(name, f"not valid INI ({type(exc).__name__}{at}): ignored")
            return
        meta = cfg.get("metadata", "name", fallback=None)
        if meta:
            self.names.add(_norm(meta))
        reqs = _cfg_lines(cfg.get("options", "install_requires", fallback=""))
        for extra in _TEST_EXTRAS:
            reqs += _cfg_lines(cfg.get("options.extras_require", extra, fallback=""))
        for req in reqs:
            self.add(name, req)

    def setup_py(self, path: Path) -> None:
        """``install_requires``/``tests_require``/test extras of a ``setup(...)`` call, read
        with ``ast`` where they are literals: setup.py is never run on the host."""
        name = self.where(path)
        try:
            tree = ast.parse(_read_contained(self.root, path).decode("utf-8", "replace"))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self.deps.note(name, "not parseable Python: its dependencies ignored")
            return
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if fname != "setup":
                continue
            for kw in node.keywords:
                try:
                    value = ast.literal_eval(kw.value)
                except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                    continue
                if kw.arg == "name" and isinstance(value, str):
                    self.names.add(_norm(value))
                elif kw.arg in ("install_requires", "tests_require"):
                    for req in _list(value):
                        if isinstance(req, str):
                            self.add(name, req)
                elif kw.arg == "extras_require" and isinstance(value, dict):
                    for extra in _TEST_EXTRAS:
                        for req in _list(value.get(extra)):
                            if isinstance(req, str):
                                self.add(name, req)

    def result(self) -> Dependencies:
        for name, spec, constraint in self.found:
            if constraint:
                if spec not in self.deps.constraints:
                    self.deps.constraints.append(spec)
            elif name not in self.names and spec not in self.deps.requirements:
                self.deps.requirements.append(spec)
        return self.deps


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _cfg_lines(value: str) -> list[str]:
    return [x.strip() for x in re.split(r"[\n;]", value) if x.strip() and x.strip()[0] != "#"]


def read_dependencies(worktree: Path, files: Sequence[str]) -> Dependencies:
    """The dependencies that ``files`` (in ``worktree``) declare, treated as untrusted data.

    - ``requirements*.txt``: each line must be a PEP 508 requirement specifier (parsed with
      ``packaging``) without a URL or path; ``-r``/``-c`` include files only inside the
      checkout (after resolving symlinks), at most 5 deep; every other pip option
      (``--index-url``, ``--find-links``, ``--trusted-host``, ``-e``, ``--hash``, ...) is
      dropped: the host's pip uses the host's index settings only;
    - ``pyproject.toml``: ``[project].dependencies`` plus the ``test``/``tests``/``testing``
      extras and PEP 735 groups, read with ``tomllib``;
    - ``setup.cfg``: ``[options] install_requires`` plus those extras;
    - ``setup.py``: literal ``install_requires``/``tests_require``/``extras_require`` of its
      ``setup()`` call, read with ``ast``.

    Every file must be a regular file inside the checkout of at most 1 MiB; what is not used is
    listed in ``ignored`` by place and reason, never by content. The project is never built nor
    its ``setup.py`` run on the host: dependencies computed at build time (``dynamic``,
    non-literal) are not found. The project itself is not installed either (its source is on
    ``PYTHONPATH``), and references to it (``name[test]``) are dropped.
    """
    root = Path(worktree).resolve()
    reader = _Reader(root)
    for rel in files:
        path = root / rel
        try:
            if path.name == "pyproject.toml":
                reader.pyproject(path)
            elif path.name == "setup.cfg":
                reader.setup_cfg(path)
            elif path.name == "setup.py":
                reader.setup_py(path)
            elif _is_dependency_file(rel):
                if path.resolve() not in reader.seen:
                    reader.requirements_file(path, constraint=False, depth=0)
            else:
                reader.deps.note(reader.where(path), "not a dependency file debugtrace reads")
        except DependencyRefused as why:
            reader.deps.note(reader.where(path), f"ignored: it {why}")
        except (OSError, RuntimeError):
            reader.deps.note(reader.where(path), "ignored: it cannot be resolved")
    return reader.result()


def project_requirements(worktree: Path, files: Sequence[str]) -> list[str]:
    """The requirement specifiers ``files`` declare (:func:`read_dependencies`'s
    ``requirements``)."""
    return read_dependencies(worktree, files).requirements


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
        if not _is_dependency_file(rel):
            continue
        try:  # never follow a symlink out of the checkout, nor read a device or FIFO
            contents[rel] = _read_contained(root, root / rel)
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
