"""A Node project's test environment: the ``node_modules`` its lockfile names, built on the host.

``package.json`` and ``package-lock.json`` are untrusted data, and npm runs on the host with
network, so:

- only the dependency sections of ``package.json`` (rewritten by us, nothing else of it) and the
  lockfile's bytes go into the build folder: never the repository's ``.npmrc``, its scripts or
  its workspaces;
- every dependency spec must be a registry range, tag or ``npm:`` alias, and every lockfile
  ``resolved`` URL an ``https`` URL on the configured registry's host: ``file:``, ``link:``,
  git, GitHub shorthands and tarball URLs are refused (:class:`EnvBuildError` naming the
  package);
- npm runs ``ci`` (with a lockfile) or ``install``, always ``--ignore-scripts`` (no install
  script of the project or a dependency runs), devDependencies included, with an empty user
  config of ours, in an allow-listed environment (no API keys, no ``DEBUGTRACE_*``), a cache and
  ``HOME`` under ``<data_dir>/envs/node``, and the environment build timeout.

Cached in ``<data_dir>/envs/node/<key>/``; the key hashes the recipe, ``node --version``, the
dependency sections and the lockfile. A folder is valid once its ``complete`` marker exists (a
half-built one is removed and rebuilt), built under a file lock. A project without any
dependency gets an empty environment with no links (its worktree is used as it is).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from debugtrace.environments import Environment, Progress
from debugtrace.errors import EnvBuildError

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.sandbox import ProjectSpec

__all__ = ["build_node", "check_lockfile", "check_spec", "npm_env", "read_manifest"]

RECIPE = "node-env-1"
"""Bump when what goes into an environment changes in a way the key does not capture."""
COMPLETE = "complete"
MAX_PACKAGE_JSON_BYTES = 1024**2
MAX_LOCKFILE_BYTES = 32 * 1024**2
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
"""What of ``package.json`` decides the environment (``overrides`` too, checked the same way)."""
_ENV_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
_NPM_CONFIG = frozenset(
    {
        "npm_config_registry",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "npm_config_noproxy",
        "npm_config_cafile",
        "npm_config_strict_ssl",
    }
)
_NAME = re.compile(r"(?:@[A-Za-z0-9][\w.~-]*/)?[A-Za-z0-9][\w.~-]*\Z")
_RANGE = re.compile(r"[\w.+^~<>=|* -]*\Z")
"""Semver ranges (``^1.2``, ``>=1 <2 || 3.x``) and dist-tags (``latest``): no ``:`` or ``/``."""
_MAX_NAME = 214
_MAX_SPEC = 256
_MAX_LOCK_DEPTH = 64


def _short(text: str, limit: int = 80) -> str:
    """``text`` for an error message: bounded, control characters escaped."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return text.encode("unicode_escape").decode("ascii")


def _read_contained(root: Path, name: str, limit: int) -> bytes | None:
    """The bytes of ``root/name``, None when it does not exist; it must be a regular file inside
    ``root`` once symlinks are resolved, of at most ``limit`` bytes (a checkout may link its
    lockfile to ``/proc/self/environ`` or a FIFO), else :class:`EnvBuildError`."""
    path = root / name
    if not os.path.lexists(path):
        return None
    try:
        base = root.resolve()
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise EnvBuildError(f"{name} cannot be read (a broken link?)") from None
    if not real.is_relative_to(base):
        raise EnvBuildError(f"{name} points outside the checkout; it is not read")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise EnvBuildError(f"{name} cannot be opened") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise EnvBuildError(f"{name} is not a regular file; it is not read")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise EnvBuildError(f"{name} is larger than {limit} bytes; it is not read")
    return data


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvBuildError(f"{name} is not valid JSON; fix it and finalize again") from None


def check_spec(name: object, spec: object, where: str = "package.json") -> None:
    """Refuse (:class:`EnvBuildError`) a dependency that is not ``name`` -> registry range, tag
    or ``npm:<name>@<range>`` alias: npm would fetch anything else from wherever it names
    (a path on the host, a git server, any URL)."""
    if not isinstance(name, str) or len(name) > _MAX_NAME or not _NAME.match(name):
        raise EnvBuildError(f"{where}: dependency name {_short(str(name))!r} is not a package name")
    if not isinstance(spec, str) or len(spec) > _MAX_SPEC:
        raise EnvBuildError(f"{where}: dependency {name!r} has no version range")
    target = spec
    if spec.startswith("npm:"):
        alias, _, target = spec[4:].rpartition("@") if "@" in spec[5:] else (spec[4:], "", "")
        if not alias or not _NAME.match(alias):
            raise EnvBuildError(f"{where}: dependency {name!r} aliases {_short(spec)!r}")
    if not _RANGE.match(target):
        raise EnvBuildError(
            f"{where}: dependency {name!r} is {_short(spec)!r}, not a registry version range: "
            "paths, file:/link:, git and tarball URLs are not installed on the host; publish "
            "it to the registry or vendor it, then finalize again"
        )


def read_manifest(root: Path) -> dict[str, dict[str, str]]:
    """The dependency sections of ``root/package.json`` (each name -> spec checked with
    :func:`check_spec`); :class:`EnvBuildError` when it is unreadable or names a non-registry
    dependency or workspaces."""
    data = _read_contained(root, "package.json", MAX_PACKAGE_JSON_BYTES)
    if data is None:
        raise EnvBuildError("package.json is missing; a Node project needs one")
    doc = _json(data, "package.json")
    if not isinstance(doc, dict):
        raise EnvBuildError("package.json is not a JSON object")
    if doc.get("workspaces"):
        raise EnvBuildError(
            "package.json declares workspaces, which debugtrace does not install (their folders "
            "would be linked from the host); test a single package instead"
        )
    out: dict[str, dict[str, str]] = {}
    for section in SECTIONS:
        deps = doc.get(section)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise EnvBuildError(f"package.json: {section} is not an object")
        for name, spec in deps.items():
            check_spec(name, spec, f"package.json {section}")
        out[section] = dict(deps)
    overrides = doc.get("overrides")
    if overrides:
        for name, spec in _flat_overrides(overrides, 0):
            check_spec(name, spec, "package.json overrides")
        out["overrides"] = overrides
    return out


def _flat_overrides(value: Any, depth: int) -> Iterator[tuple[str, object]]:
    if depth > 8 or not isinstance(value, dict):
        raise EnvBuildError("package.json: overrides are not an object of version ranges")
    for name, spec in value.items():
        if isinstance(spec, dict):
            yield from _flat_overrides(spec, depth + 1)
            spec = spec.get(".", "*")
        key = name.rsplit("@", 1)[0] if name.rfind("@") > 0 else name
        if spec == "$" + key:  # "$name": the root's own range for it
            continue
        yield key, spec


def _registry(environ: Mapping[str, str]) -> str:
    url = environ.get("npm_config_registry") or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def check_lockfile(data: bytes, registry: str = DEFAULT_REGISTRY) -> int:
    """Check a ``package-lock.json``: every entry a registry package, every ``resolved`` URL
    ``https`` on ``registry``'s host, no links or workspace folders. Returns how many packages
    it names; raises :class:`EnvBuildError` naming the first refused entry."""
    doc = _json(data, "package-lock.json")
    if not isinstance(doc, dict):
        raise EnvBuildError("package-lock.json is not a JSON object")
    host = urlsplit(registry).hostname
    count = 0
    packages = doc.get("packages")
    if isinstance(packages, dict):  # lockfileVersion 2 and 3
        for key, entry in packages.items():
            if key == "":
                continue
            if not isinstance(key, str) or not key.startswith("node_modules/") or ".." in key:
                raise EnvBuildError(
                    f"package-lock.json: {_short(str(key))!r} is not a package under "
                    "node_modules (a workspace or linked folder); it is not installed"
                )
            _check_entry(key[len("node_modules/") :], entry, host)
            count += 1
        return count
    deps = doc.get("dependencies")  # lockfileVersion 1: nested "dependencies"
    return _check_v1(deps, host, 0) if isinstance(deps, dict) else 0


def _check_v1(deps: dict[str, Any], host: str | None, depth: int) -> int:
    if depth > _MAX_LOCK_DEPTH:
        raise EnvBuildError("package-lock.json nests dependencies too deeply")
    count = 0
    for name, entry in deps.items():
        if not isinstance(name, str) or len(name) > _MAX_NAME or not _NAME.match(name):
            raise EnvBuildError(f"package-lock.json: {_short(str(name))!r} is not a package name")
        _check_entry(name, entry, host)
        count += 1
        inner = entry.get("dependencies")
        if isinstance(inner, dict):
            count += _check_v1(inner, host, depth + 1)
    return count


def _check_entry(name: str, entry: object, host: str | None) -> None:
    where = "package-lock.json"
    if not isinstance(entry, dict):
        raise EnvBuildError(f"{where}: the entry of {_short(name)!r} is not an object")
    if entry.get("link"):
        raise EnvBuildError(f"{where}: {_short(name)!r} is a link to a folder; not installed")
    version = entry.get("version")
    if version is not None and not (isinstance(version, str) and _RANGE.match(version)):
        raise EnvBuildError(
            f"{where}: {_short(name)!r} has version {_short(str(version))!r}, not a "
            "registry version (git, file or URL dependencies are not installed)"
        )
    resolved = entry.get("resolved")
    if resolved is None:
        return
    parts = urlsplit(resolved) if isinstance(resolved, str) else None
    if parts is None or parts.scheme != "https" or parts.hostname != host or parts.username:
        raise EnvBuildError(
            f"{where}: {_short(name)!r} resolves to {_short(str(resolved))!r}, not an https "
            f"URL on the registry host {host}; regenerate the lockfile against that registry"
        )


def npm_env(cache_root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment npm runs with: an allow-list of ``environ`` (default: this process's):
    ``PATH``, locale, proxies, CA settings and the registry, never API keys or ``DEBUGTRACE_*``;
    ``HOME`` and the cache under ``cache_root`` (ours), scripts, audit and update checks off."""
    env = os.environ if environ is None else environ
    kept = {k: v for k, v in env.items() if k in _ENV_NAMES or k in _NPM_CONFIG}
    kept.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    kept.update(
        HOME=str(cache_root / "home"),
        npm_config_cache=str(cache_root / "npm-cache"),
        npm_config_ignore_scripts="true",
        npm_config_update_notifier="false",
        npm_config_audit="false",
        npm_config_fund="false",
    )
    return kept


def _tool(name: str, env: Mapping[str, str]) -> str:
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        raise EnvBuildError(
            f"{name} is not installed on this host; install Node.js 18.19 or later with npm "
            "(e.g. apt-get install nodejs npm) and finalize again"
        )
    return found


def _node_version(env: Mapping[str, str]) -> str:
    try:
        done = subprocess.run(
            [_tool("node", env), "--version"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvBuildError(f"node --version failed: {exc}") from None
    version = done.stdout.strip()
    if done.returncode != 0 or not re.fullmatch(r"v\d+\.\d+\.\d+\S*", version):
        raise EnvBuildError("node --version did not print a version; check the Node install")
    return version


def _npm_errors(output: str) -> str:
    """What of npm's output goes into an error message: its error lines, bounded."""
    lines = [ln for ln in output.splitlines() if ln.startswith(("npm ERR!", "npm error"))]
    kept = [_short(ln, 300) for ln in lines[-12:]] or ["(npm printed no error line)"]
    return "\n".join(kept)


def _key(version: str, manifest: Mapping[str, Any], lock: bytes | None) -> str:
    h = hashlib.sha256()
    doc = {"recipe": RECIPE, "node": version, "manifest": manifest}
    h.update(json.dumps(doc, sort_keys=True).encode())
    h.update(b"\0lock\0" + (lock if lock is not None else b"(none)"))
    return h.hexdigest()


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress(text)


def build_node(
    worktree: Path,
    project: ProjectSpec,
    settings: Settings,
    progress: Progress | None = None,
) -> Environment:
    """The ``node_modules`` of the project in ``worktree``, built with npm if not cached.

    Raises :class:`EnvBuildError` when a dependency file is refused or npm fails (with npm's
    bounded error lines and what to do)."""
    del project  # the files that matter are fixed: package.json and package-lock.json
    from filelock import FileLock

    base = settings.data_dir / "envs" / "node"
    base.mkdir(parents=True, exist_ok=True)
    env = npm_env(base)
    manifest = read_manifest(worktree)
    lock = _read_contained(worktree, "package-lock.json", MAX_LOCKFILE_BYTES)
    if lock is not None:
        check_lockfile(lock, _registry(env))
    version = _node_version(env)
    key = _key(version, manifest, lock)
    path = base / key
    empty = not any(manifest.get(s) for s in SECTIONS)
    with FileLock(str(path) + ".lock", timeout=settings.env_timeout_s):
        marker = path / COMPLETE
        reused = marker.is_file()
        if not reused:
            shutil.rmtree(path, ignore_errors=True)  # a build that did not finish
            path.mkdir(parents=True)
            if not empty:
                _say(progress, f"installing Node packages ({'npm ci' if lock else 'npm install'})")
                _install(path, manifest, lock, env, settings.env_timeout_s)
            count = _count(path)
            marker.write_text(json.dumps({"packages": count}))
        else:
            count = _marker_count(marker)
    state = "reused" if reused else "built"
    if empty:
        return Environment(
            kind="node",
            key=key,
            path=path,
            description=f"node {version}; no dependencies, nothing installed",
            reused=reused,
        )
    return Environment(
        kind="node",
        key=key,
        path=path,
        description=f"node {version}; env node-{key[:12]} ({state}), {count} packages",
        reused=reused,
        bin_dirs=("{workspace}/node_modules/.bin",),
        links={"node_modules": path / "node_modules"},
        binds=(path,),
    )


def _install(
    path: Path, manifest: Mapping[str, Any], lock: bytes | None, env: dict[str, str], t: float
) -> None:
    # Our own package.json: the checked dependency sections and nothing else of the project's.
    doc = {"name": "debugtrace-node-env", "version": "0.0.0", "private": True, **manifest}
    (path / "package.json").write_text(json.dumps(doc, indent=1))
    if lock is not None:
        (path / "package-lock.json").write_bytes(lock)
    userconfig = path.parent / "empty-npmrc"
    userconfig.write_text("")
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    argv = [
        _tool("npm", env),
        "ci" if lock is not None else "install",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--include=dev",
        "--include=optional",
        "--include=peer",
        "--no-save",
        f"--userconfig={userconfig}",
    ]
    try:
        done = subprocess.run(
            argv,
            cwd=path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=t,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EnvBuildError(
            f"npm took longer than {t:.0f}s to install the dependencies; raise "
            "DEBUGTRACE_ENV_TIMEOUT_S or check the registry's reachability"
        ) from None
    except OSError as exc:
        raise EnvBuildError(f"npm could not be started: {exc}") from None
    if done.returncode != 0:
        hint = (
            "is package-lock.json in sync with package.json? (npm install, then commit both)"
            if lock is not None
            else "do the dependencies exist on the registry?"
        )
        raise EnvBuildError(
            f"npm {argv[1]} failed (exit {done.returncode}); {hint}\n"
            + _npm_errors(done.stdout + "\n" + done.stderr)
        )


def _count(path: Path) -> int:
    """How many packages npm put into ``node_modules`` (its hidden lockfile lists them)."""
    hidden = path / "node_modules" / ".package-lock.json"
    try:
        doc = json.loads(hidden.read_text())
        return len(doc.get("packages", {}))
    except (OSError, ValueError, AttributeError):
        return 0


def _marker_count(marker: Path) -> int:
    try:
        return int(json.loads(marker.read_text()).get("packages", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0
