"""A Python project's dependency files, read as untrusted data.

Only requirement specifiers come out of them (parsed with ``packaging``): no URL, path, pip option
or environment variable reaches an installer, nothing of the project is built or run on the host,
and every file read must be a regular file inside the checkout of bounded size. What is not used
is listed by place and reason, never by content. The environment builder
(:mod:`debugtrace.environments.python`) and the docker sandbox's images both read through here.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debugtrace.errors import DependencyRefused, EnvBuildError

__all__ = [
    "DEV_EXTRAS",
    "MAX_DEPENDENCY_FILE_BYTES",
    "MAX_REQUIREMENTS",
    "TEST_EXTRAS",
    "Dependencies",
    "ProjectMeta",
    "is_dependency_file",
    "norm_name",
    "pip_env",
    "project_requirements",
    "read_contained",
    "read_dependencies",
    "read_project_meta",
    "tail",
]

TEST_EXTRAS = ("test", "tests", "testing")
"""Optional-dependency extras and PEP 735 dependency groups installed with a project's own
dependencies: what its test suite needs."""
DEV_EXTRAS = ("dev",)
"""Extras and groups installed when they can be: they often hold tools the tests do not need
(linters, docs), so an environment that cannot be built with them is built without them."""


def tail(text: str, lines: int = 20, *, width: int = 300, total: int = 3000) -> str:
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
    optional: list[str] = field(default_factory=list)
    """Specifiers of the ``dev`` extras and groups: installed when they can be."""
    runtime: set[str] = field(default_factory=set)
    """Normalised names the project needs at run time (``dependencies``, ``install_requires``);
    the others are only its tests'."""
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
        raise EnvBuildError(
            "reading a project's dependencies needs the `packaging` library: pip install packaging"
        ) from exc
    return Requirement


def is_dependency_file(name: str) -> bool:
    """Whether debugtrace reads ``name`` for dependencies (by its name alone)."""
    base = Path(name).name
    return base in ("pyproject.toml", "setup.py", "setup.cfg", "tox.ini") or (
        "requirements" in name and base.endswith(".txt")
    )


def norm_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_contained(root: Path, path: Path) -> bytes:
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
    return norm_name(req.name), str(req)


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
        self.optional: list[tuple[str, str]] = []  # (name, specifier) of dev extras
        self.seen: set[Path] = set()
        # the project's own extras (name -> (where, specifiers)) and those asked for by a
        # reference to the project itself (`.[test]`, `name[test]`, tox's `extras = test`)
        self.extras: dict[str, list[tuple[str, str]]] = {}
        self.self_extras: set[str] = set()

    def where(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except (ValueError, OSError, RuntimeError):
            return path.name

    def add(
        self, where: str, text: str, *, constraint: bool = False, optional: bool = False
    ) -> None:
        if len(self.found) + len(self.optional) >= MAX_REQUIREMENTS:
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
        if optional:
            self.optional.append((name, spec))
        else:
            self.found.append((name, spec, constraint))

    def runtime_specs(self, specs: object) -> None:
        """Note the names of run-time requirements (their specifiers are added as usual)."""
        for spec in _list(specs):
            if isinstance(spec, str):
                m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
                if m:
                    self.deps.runtime.add(norm_name(m.group(1)))

    def table(self, where: str, extras: object) -> None:
        """Remember the project's extras (a name -> list of specifiers table)."""
        if isinstance(extras, dict):
            for extra, reqs in extras.items():
                if isinstance(extra, str):
                    items = [(where, r) for r in _list(reqs) if isinstance(r, str)]
                    self.extras.setdefault(norm_name(extra), []).extend(items)

    def requirements_file(self, path: Path, *, constraint: bool, depth: int) -> None:
        text = read_contained(self.root, path).decode("utf-8", "replace")
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
            data = tomllib.loads(read_contained(self.root, path).decode("utf-8", "replace"))
        except RecursionError:
            self.deps.note(name, "nested too deeply: its dependencies ignored")
            return
        except tomllib.TOMLDecodeError as exc:  # its message is a position, never the text
            self.deps.note(name, f"not valid TOML ({str(exc)[:100]}): its dependencies ignored")
            return
        project = data.get("project")
        reqs: list[object] = []
        if isinstance(project, dict):
            if isinstance(project.get("name"), str):
                self.names.add(norm_name(project["name"]))
            reqs += _list(project.get("dependencies"))
            self.runtime_specs(project.get("dependencies"))
            self.table(name, project.get("optional-dependencies"))
        groups = data.get("dependency-groups")
        if isinstance(groups, dict):  # PEP 735; {include-group = ...} tables are skipped
            for group in TEST_EXTRAS:
                reqs += _list(groups.get(group))
            for group in DEV_EXTRAS:
                for req in _list(groups.get(group)):
                    if isinstance(req, str):
                        self.add(name, req, optional=True)
        for req in reqs:
            if isinstance(req, str):
                self.add(name, req)

    def setup_cfg(self, path: Path) -> None:
        name = self.where(path)
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string(read_contained(self.root, path).decode("utf-8", "replace"))
        except configparser.Error as exc:  # its message quotes the file: name the kind only
            line = getattr(exc, "lineno", None)
            at = f" at line {line}" if isinstance(line, int) else ""
            self.deps.note(name, f"not valid INI ({type(exc).__name__}{at}): ignored")
            return
        meta = cfg.get("metadata", "name", fallback=None)
        if meta:
            self.names.add(norm_name(meta))
        reqs = _cfg_lines(cfg.get("options", "install_requires", fallback=""))
        self.runtime_specs(reqs)
        reqs += _cfg_lines(cfg.get("options", "tests_require", fallback=""))
        if cfg.has_section("options.extras_require"):
            self.table(
                name,
                {k: _cfg_lines(v) for k, v in cfg.items("options.extras_require", raw=True)},
            )
        for req in reqs:
            self.add(name, req)

    def tox_ini(self, path: Path) -> None:
        """``deps`` and ``extras`` of tox's ``[testenv]``: specifiers, ``-r``/``-c`` includes
        and references to the project's own extras (``.[test]``); factor conditions
        (``py311: pytest``) are taken as if they matched, substitutions are skipped."""
        name = self.where(path)
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string(read_contained(self.root, path).decode("utf-8", "replace"))
        except configparser.Error as exc:
            line = getattr(exc, "lineno", None)
            at = f" at line {line}" if isinstance(line, int) else ""
            self.deps.note(name, f"not valid INI ({type(exc).__name__}{at}): ignored")
            return
        if not cfg.has_section("testenv"):
            return
        for extra in _cfg_lines(cfg.get("testenv", "extras", fallback="")):
            self.self_extras.add(norm_name(extra))
        for lineno, line in enumerate(_cfg_lines(cfg.get("testenv", "deps", fallback="")), 1):
            where = f"{name}:[testenv]deps:{lineno}"
            line = re.sub(r"^[\w.,!{}-]+:\s+", "", line)  # a tox factor condition
            if "{" in line:
                self.deps.note(where, "tox substitution skipped")
            elif line.startswith("-"):
                opt, target = _option(line)
                if opt in ("-r", "--requirement", "-c", "--constraint") and target:
                    self.include(where, path.parent / target, opt in ("-c", "--constraint"), 0)
                elif opt == "-e" and target.startswith("."):
                    self.self_reference(target)
                else:
                    self.deps.note(where, "pip option ignored")
            elif line.startswith("."):
                self.self_reference(line)
            else:
                self.add(where, line)

    def self_reference(self, text: str) -> None:
        """``.[a,b]``: the project itself with extras a and b."""
        m = re.match(r"\.\s*\[([^\]]*)\]", text)
        if m:
            self.self_extras.update(norm_name(x) for x in m.group(1).split(",") if x.strip())

    def setup_py(self, path: Path) -> None:
        """``install_requires``/``tests_require``/test extras of a ``setup(...)`` call, read
        with ``ast`` where they are literals: setup.py is never run on the host."""
        name = self.where(path)
        keywords = setup_keywords(read_contained(self.root, path).decode("utf-8", "replace"))
        if keywords is None:
            self.deps.note(name, "not parseable Python: its dependencies ignored")
            return
        for arg, value in keywords:
            if arg == "name" and isinstance(value, str):
                self.names.add(norm_name(value))
            elif arg in ("install_requires", "tests_require"):
                if arg == "install_requires":
                    self.runtime_specs(value)
                for req in _list(value):
                    if isinstance(req, str):
                        self.add(name, req)
            elif arg == "extras_require" and isinstance(value, dict):
                self.table(name, value)

    def result(self) -> Dependencies:
        # the test extras, those the project asks for by name, and what they ask for in turn
        wanted = [norm_name(e) for e in TEST_EXTRAS] + sorted(self.self_extras)
        done: set[str] = set()
        for name, spec, _ in list(self.found):
            if name in self.names:
                wanted += _extras_of(spec)
        while wanted:
            extra = wanted.pop(0)
            if extra in done:
                continue
            done.add(extra)
            for where, req in self.extras.get(extra, []):
                before = len(self.found)
                self.add(where, req)
                for name, spec, _ in self.found[before:]:
                    if name in self.names:
                        wanted += _extras_of(spec)
        for extra in DEV_EXTRAS:
            for where, req in self.extras.get(extra, []) if extra not in done else []:
                self.add(where, req, optional=True)
        for name, spec, constraint in self.found:
            if constraint:
                if spec not in self.deps.constraints:
                    self.deps.constraints.append(spec)
            elif name not in self.names and spec not in self.deps.requirements:
                self.deps.requirements.append(spec)
        for name, spec in self.optional:
            if name not in self.names and spec not in self.deps.requirements + self.deps.optional:
                self.deps.optional.append(spec)
        return self.deps


def _extras_of(spec: str) -> list[str]:
    m = re.match(r"[^\[;\s]*\[([^\]]*)\]", spec)
    return [norm_name(x) for x in m.group(1).split(",") if x.strip()] if m else []


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
      ``setup()`` call, read with ``ast``;
    - ``tox.ini``: ``[testenv]`` ``deps`` and ``extras``.

    The extras installed are ``test``, ``tests``, ``testing``, those the project names itself
    with (``name[test]``, ``.[test]``, tox's ``extras``), recursively, and ``dev`` (optional:
    ``optional``).

    Every file must be a regular file inside the checkout of at most 1 MiB; what is not used is
    listed in ``ignored`` by place and reason, never by content. The project is never built nor
    its ``setup.py`` run on the host: dependencies computed at build time (``dynamic``,
    non-literal) are not found. The project itself is not installed from here (its source goes
    first on ``PYTHONPATH``), and references to it (``name[test]``) become its extras.
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
            elif path.name == "tox.ini":
                reader.tox_ini(path)
            elif is_dependency_file(rel):
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


# -- what the project says about itself ---------------------------------------------------------


@dataclass
class ProjectMeta:
    """The static metadata of the project in a checkout, read like its dependency files (never
    built or run): what an installed copy of it would tell ``importlib.metadata``."""

    name: str | None = None
    version: str = "0+unknown"
    requires_python: str | None = None
    """The ``requires-python`` / ``python_requires`` specifier, if any."""
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    """group -> name -> ``module:attr`` (``pytest11`` plugins, ``console_scripts``, ...)."""
    import_root: str = "."
    """The folder (relative to the checkout) that holds its importable code: ``src`` for a
    src layout, what ``package-dir`` maps the root to, else the checkout itself."""
    version_file: str | None = None
    """The module a VCS version plugin writes at build time (hatch-vcs ``version-file``,
    setuptools-scm ``version_file``/``write_to``); a checkout does not have it."""

    def version_module(self) -> bytes:
        """What setuptools-scm would write into :attr:`version_file` (for this version)."""
        parts = ", ".join(
            repr(int(p) if p.isdigit() else p) for p in re.split(r"[.+]", self.version)
        )
        return (
            "# written by debugtrace: a checkout has no version from its VCS build plugin\n"
            f"__version__ = version = {self.version!r}\n"
            f"__version_tuple__ = version_tuple = ({parts},)\n"
        ).encode()


_VERSION_LINE = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*['"]([^'"\n]{1,64})['"]""", re.M)
_MAX_ENTRY_POINTS = 200
_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}")


def _read_text(root: Path, rel: str) -> str | None:
    try:
        return read_contained(root, root / rel).decode("utf-8", "replace")
    except (DependencyRefused, OSError, RuntimeError):
        return None


def _entry(meta: ProjectMeta, group: object, name: object, value: object) -> None:
    if not (isinstance(group, str) and isinstance(name, str) and isinstance(value, str)):
        return
    if sum(len(v) for v in meta.entry_points.values()) >= _MAX_ENTRY_POINTS:
        return
    # written into entry_points.txt: one line each, no section syntax smuggled in
    group, name, value = group.strip(), name.strip(), value.strip()
    if (
        re.fullmatch(r"[\w.-]{1,100}", group)
        and re.fullmatch(r"[\w.-]{1,200}", name)
        and re.fullmatch(r"[\w.]+(:[\w.]+)?( ?\[[\w., -]*\])?", value[:300])
    ):
        meta.entry_points.setdefault(group, {})[name] = value


def read_project_meta(worktree: Path) -> ProjectMeta:
    """Name, version, ``requires-python``, entry points and import root of the project in
    ``worktree``, from ``pyproject.toml``, ``setup.cfg`` and literals of ``setup.py`` (the first
    that says). A version computed at build time is looked for as a ``__version__ = "..."``
    line in the package; else ``0+unknown``."""
    root = Path(worktree).resolve()
    meta = ProjectMeta()
    text = _read_text(root, "pyproject.toml")
    if text is not None:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError, MemoryError):
            data = {}
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        assert isinstance(project, dict)
        if isinstance(project.get("name"), str):
            meta.name = project["name"]
        if isinstance(project.get("version"), str):
            meta.version = project["version"]
        if isinstance(project.get("requires-python"), str):
            meta.requires_python = project["requires-python"]
        for group, table in (project.get("entry-points") or {}).items():
            for name, value in table.items() if isinstance(table, dict) else []:
                _entry(meta, group, name, value)
        for key, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
            table = project.get(key)
            for name, value in table.items() if isinstance(table, dict) else []:
                _entry(meta, group, name, value)
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        assert isinstance(tool, dict)
        setuptools = tool.get("setuptools") if isinstance(tool.get("setuptools"), dict) else {}
        assert isinstance(setuptools, dict)
        package_dir = setuptools.get("package-dir")
        if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
            meta.import_root = package_dir[""]
        meta.version_file = _version_file(tool)
    text = _read_text(root, "setup.cfg")
    if text is not None:
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string(text)
        except (configparser.Error, RecursionError, MemoryError):
            cfg = configparser.ConfigParser(interpolation=None)
        meta.name = meta.name or cfg.get("metadata", "name", fallback=None)
        version = cfg.get("metadata", "version", fallback="")
        if meta.version == "0+unknown" and version and not version.startswith(("attr:", "file:")):
            meta.version = version
        meta.requires_python = meta.requires_python or cfg.get(
            "options", "python_requires", fallback=None
        )
        m = re.search(r"^\s*=\s*(\S+)", cfg.get("options", "package_dir", fallback=""), re.M)
        if m and meta.import_root == ".":
            meta.import_root = m.group(1)
        if cfg.has_section("options.entry_points"):
            for group, lines in cfg.items("options.entry_points", raw=True):
                for line in _cfg_lines(lines):
                    name, _, value = line.partition("=")
                    _entry(meta, group, name, value)
    text = _read_text(root, "setup.py")
    if text is not None:
        _setup_py_meta(text, meta)
    # both end up in a folder name and a METADATA file: only what PEP 508 and 440 allow
    if meta.name is not None and not _NAME.fullmatch(meta.name):
        meta.name = None
    if not _VERSION.fullmatch(meta.version):
        meta.version = "0+unknown"
    if meta.import_root == "." and (root / "src").is_dir():
        meta.import_root = "src"
    meta.import_root = _contained_folder(root, meta.import_root)
    if meta.version == "0+unknown" and meta.name:
        meta.version = _version_line(root, meta) or meta.version
    return meta


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _version_file(tool: dict[str, Any]) -> str | None:
    """Where hatch-vcs or setuptools-scm write the version module, if they are configured to."""
    for found in (
        _dig(tool, "hatch", "build", "hooks", "vcs", "version-file"),
        _dig(tool, "setuptools_scm", "version_file"),
        _dig(tool, "setuptools_scm", "write_to"),
    ):
        if (
            isinstance(found, str)
            and re.fullmatch(r"[\w.-]+(/[\w.-]+)*\.py", found)
            and not {".", "..", ".git"} & {part.lower() for part in found.split("/")}
        ):
            return found
    return None


def _setup_py_meta(text: str, meta: ProjectMeta) -> None:
    for arg, value in setup_keywords(text) or []:
        if arg == "name" and isinstance(value, str):
            meta.name = meta.name or value
        elif arg == "version" and isinstance(value, str) and meta.version == "0+unknown":
            meta.version = value
        elif arg == "python_requires" and isinstance(value, str):
            meta.requires_python = meta.requires_python or value
        elif arg == "package_dir" and isinstance(value, dict):
            if isinstance(value.get(""), str) and meta.import_root == ".":
                meta.import_root = value[""]
        elif arg == "entry_points" and isinstance(value, dict):
            for group, lines in value.items():
                items = [lines] if isinstance(lines, str) else _list(lines)
                for line in items:
                    if isinstance(line, str):
                        name, _, target = line.partition("=")
                        _entry(meta, group, name, target)


def setup_keywords(text: str) -> list[tuple[str | None, object]] | None:
    """The literal keyword arguments of every ``setup(...)`` call in ``text`` (a setup.py),
    read with ``ast`` (never run); None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found: list[tuple[str | None, object]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")) != "setup":
            continue
        for kw in node.keywords:
            try:
                found.append((kw.arg, ast.literal_eval(kw.value)))
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                continue
    return found


def _contained_folder(root: Path, rel: str) -> str:
    """``rel`` if it names a folder inside ``root`` (after resolving links), else ``.``."""
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", rel) or ".." in rel.split("/"):
        return "."
    try:
        real = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return "."
    return rel if real.is_dir() and real.is_relative_to(root) and real != root else "."


def _version_line(root: Path, meta: ProjectMeta) -> str | None:
    """A literal ``__version__`` in the package's ``__init__.py``, ``_version.py``,
    ``version.py`` or ``__about__.py`` (a version computed at build time, e.g. by flit)."""
    assert meta.name
    package = meta.name.replace("-", "_").replace(".", "_").lower()
    base = "" if meta.import_root == "." else meta.import_root + "/"
    for name in ("__init__.py", "_version.py", "version.py", "__about__.py"):
        text = _read_text(root, f"{base}{package}/{name}")
        m = _VERSION_LINE.search(text or "")
        if m and re.fullmatch(r"[\w.+!-]+", m.group(1)):
            return m.group(1)
    return None
