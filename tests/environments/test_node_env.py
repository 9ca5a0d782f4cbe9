"""Node test environments: real npm against the real registry, cached by content.

Skipped (with the reason) when npm is not installed or the npm registry does not answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from debugtrace import Settings
from debugtrace.environments import node as node_env
from debugtrace.environments.build import build_environment
from debugtrace.errors import EnvBuildError
from debugtrace.sandbox.node_projects import detect_node
from support.services import require

REGISTRY = "https://registry.npmjs.org/"
# is-number@7.0.0 has no dependencies; tiny and stable for years.
LOCK = {
    "name": "p",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "p", "version": "1.0.0", "devDependencies": {"is-number": "^7.0.0"}},
        "node_modules/is-number": {
            "version": "7.0.0",
            "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
            "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPD"
            "lK9cGvNp6NZWZUBlbGXYxxng==",
            "dev": True,
            "engines": {"node": ">=0.12.0"},
        },
    },
}


@pytest.fixture
def npm() -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        require("npm", "node and npm are not installed (apt-get install nodejs npm)")
    try:
        with urllib.request.urlopen(REGISTRY + "is-number", timeout=10) as r:
            r.read(1)
    except OSError as exc:
        require("the npm registry", f"{REGISTRY} does not answer: {exc}")


def make_project(root: Path, lock: bool = True, deps: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": "p",
        "version": "1.0.0",
        "scripts": {"test": "node --test"},
        "devDependencies": {"is-number": "^7.0.0"} if deps is None else deps,
    }
    (root / "package.json").write_text(json.dumps(doc))
    if lock:
        (root / "package-lock.json").write_text(json.dumps(LOCK))
    return root


def build(root: Path, settings: Settings) -> node_env.Environment:
    spec = detect_node(root)
    assert spec is not None
    env = build_environment(root, spec, settings)
    assert env is not None
    return env


@pytest.mark.usefixtures("npm")
def test_npm_ci_builds_then_reuses(tmp_path: Path, settings: Settings) -> None:
    root = make_project(tmp_path / "repo1")
    env = build(root, settings)
    assert env.kind == "node"
    assert not env.reused
    assert env.path == settings.data_dir / "envs" / "node" / env.key
    assert (env.path / "node_modules" / "is-number" / "package.json").is_file()
    assert (env.path / "complete").is_file()
    assert env.links == {"node_modules": env.path / "node_modules"}
    assert env.binds == (env.path,)
    assert env.bin_dirs == ("{workspace}/node_modules/.bin",)
    assert f"env node-{env.key[:12]} (built), 1 packages" in env.description
    assert env.description.startswith("node v")

    # The same dependencies in another checkout: reused, and npm is not run at all.
    other = make_project(tmp_path / "repo2")
    real_run = subprocess.run

    def no_npm(argv, *a, **kw):  # type: ignore[no-untyped-def]
        assert "npm" not in Path(argv[0]).name, argv
        return real_run(argv, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(node_env.subprocess, "run", no_npm)
        again = build(other, settings)
    assert again.reused
    assert again.key == env.key
    assert "(reused), 1 packages" in again.description


@pytest.mark.usefixtures("npm")
def test_a_folder_without_its_marker_is_rebuilt(tmp_path: Path, settings: Settings) -> None:
    root = make_project(tmp_path)
    env = build(root, settings)
    (env.path / "complete").unlink()
    (env.path / "leftover").write_text("half a build")
    again = build(root, settings)
    assert not again.reused
    assert not (env.path / "leftover").exists()
    assert (env.path / "node_modules" / "is-number").is_dir()


@pytest.mark.usefixtures("npm")
def test_without_lockfile_npm_install_resolves(tmp_path: Path, settings: Settings) -> None:
    env = build(make_project(tmp_path, lock=False), settings)
    assert (env.path / "node_modules" / "is-number" / "package.json").is_file()


@pytest.mark.usefixtures("npm")
def test_the_key_follows_the_lockfile(tmp_path: Path, settings: Settings) -> None:
    a = build(make_project(tmp_path / "a", lock=False), settings)
    b = build(make_project(tmp_path / "b"), settings)
    assert a.key != b.key


@pytest.mark.usefixtures("npm")
def test_a_lockfile_out_of_sync_says_what_to_do(tmp_path: Path, settings: Settings) -> None:
    root = make_project(tmp_path, deps={"is-number": "^7.0.0", "is-odd": "^3.0.1"})
    with pytest.raises(EnvBuildError, match=r"in sync with package\.json"):
        build(root, settings)


@pytest.mark.usefixtures("npm")
def test_a_missing_package_is_an_env_build_error(tmp_path: Path, settings: Settings) -> None:
    root = make_project(tmp_path, lock=False, deps={"debugtrace-no-such-package-x9": "1.0.0"})
    with pytest.raises(EnvBuildError, match="npm install failed"):
        build(root, settings)


def test_no_dependencies_no_npm_no_links(tmp_path: Path, settings: Settings) -> None:
    if shutil.which("node") is None:
        require("node", "node is not installed (apt-get install nodejs)")
    env = build(make_project(tmp_path, lock=False, deps={}), settings)
    assert env.links == {}
    assert env.binds == ()
    assert "no dependencies" in env.description
    assert not (env.path / "node_modules").exists()
    assert build(tmp_path, settings).reused


def test_missing_npm_says_how_to_install(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EnvBuildError, match=r"install Node\.js"):
        build(make_project(tmp_path), settings)
