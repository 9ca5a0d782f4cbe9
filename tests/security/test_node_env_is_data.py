"""Issue 15: a Node project's package.json and package-lock.json are untrusted data.

npm runs on the host with network, so: only registry packages are installed (no paths, links,
git, tarball URLs, foreign lockfile hosts), no install script runs (the project's or a
dependency's), the repository's ``.npmrc`` is never read, and npm sees no secrets.
The install tests run real npm against a local registry of ours that serves a package whose
install scripts would write files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.environments.node import build_node, check_lockfile, npm_env, read_manifest
from debugtrace.errors import EnvBuildError
from debugtrace.sandbox import ProjectSpec
from support.services import require

CANARY = f"canary-{uuid.uuid4().hex}"
SPEC = ProjectSpec(kind="node", test_command=("node", "--test"))


def write_script(path: Path) -> str:
    """A shell-free install script that would leave ``path`` behind if it ran."""
    assert "'" not in str(path)
    return f"node -e \"require('fs').writeFileSync('{path}', 'ran')\""


def tarball(pkg: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in (("package/package.json", json.dumps(pkg)), ("package/index.js", "")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@contextlib.contextmanager
def registry(packages: dict[str, dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local npm registry serving ``packages`` (name -> package.json of version 1.0.0);
    yields (its URL, the headers of every request)."""
    seen: list[dict[str, str]] = []
    files: dict[str, bytes] = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    for name, pkg in packages.items():
        tgz = tarball(pkg)
        files[f"/{name}/-/{name}-1.0.0.tgz"] = tgz
        dist = {
            "tarball": f"{url}{name}/-/{name}-1.0.0.tgz",
            "shasum": hashlib.sha1(tgz).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
        }
        doc = {
            "name": name,
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {**pkg, "dist": dist}},
        }
        files[f"/{name}"] = json.dumps(doc).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers)})
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def npm() -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        require("npm", "node and npm are not installed (apt-get install nodejs npm)")


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DEBUGTRACE_API_TOKEN", f"dt-{CANARY}")
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-{CANARY}")
    monkeypatch.setenv("NPM_TOKEN", f"npm-{CANARY}")
    monkeypatch.setenv("npm_config__authToken", f"auth-{CANARY}")
    return CANARY


def package_json(root: Path, **doc: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": "p", "version": "1.0.0", **doc}))
    return root


@pytest.mark.usefixtures("npm")
def test_no_install_script_runs_and_the_repo_npmrc_is_not_read(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, secrets_in_env: str
) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    scripts = {s: write_script(ran / f"dep-{s}") for s in ("preinstall", "install", "postinstall")}
    evil_pkg = {"name": "dt-canary", "version": "1.0.0", "scripts": scripts}
    with registry({"dt-canary": evil_pkg}) as (url, seen), registry({}) as (evil_url, evil_seen):
        monkeypatch.setenv("npm_config_registry", url)
        own = {s: write_script(ran / f"own-{s}") for s in ("preinstall", "postinstall", "prepare")}
        root = package_json(tmp_path / "repo", scripts=own, dependencies={"dt-canary": "^1.0.0"})
        # The repository's .npmrc would send npm (and a token) to another registry.
        (root / ".npmrc").write_text(f"registry={evil_url}\n//127.0.0.1/:_authToken={CANARY}\n")
        env = build_node(root, SPEC, settings)
        assert (env.path / "node_modules" / "dt-canary" / "package.json").is_file()
        assert list(ran.iterdir()) == []  # not one script ran
        seen_by_us = list(seen)
        # Control: npm as people run it would have run them all.
        control = package_json(tmp_path / "control", dependencies={"dt-canary": "^1.0.0"})
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"--registry={url}"],
            cwd=control,
            env={**npm_env(tmp_path / "control-home"), "npm_config_ignore_scripts": "false"},
            capture_output=True,
            check=True,
        )
        assert sorted(p.name for p in ran.iterdir()) == [
            "dep-install",
            "dep-postinstall",
            "dep-preinstall",
        ]
    assert evil_seen == []
    assert seen_by_us and all(secrets_in_env not in json.dumps(h) for h in seen_by_us)
    assert not (env.path / ".npmrc").exists()
    ours = json.loads((env.path / "package.json").read_text())
    assert "scripts" not in ours


def test_npm_env_keeps_no_secrets(secrets_in_env: str, tmp_path: Path) -> None:
    env = npm_env(tmp_path)
    assert secrets_in_env not in json.dumps(env)
    assert env["HOME"].startswith(str(tmp_path))
    assert env["npm_config_ignore_scripts"] == "true"


@pytest.mark.parametrize(
    "spec",
    [
        "file:../../etc",
        "file:/etc",
        "link:../other",
        "../sibling",
        "./vendored",
        "/abs/path",
        "~/x",
        "git+ssh://git@example.com/x.git",
        "git://example.com/x.git",
        "github:user/repo",
        "user/repo",
        "user/repo#main",
        "http://127.0.0.1:1/x.tgz",
        "https://example.com/x.tgz",
        "npm:../x@1",
        "workspace:*",
        "1.0.0\n--registry=http://evil",
    ],
)
def test_non_registry_specs_are_refused(tmp_path: Path, spec: str) -> None:
    root = package_json(tmp_path, devDependencies={"left-pad": spec})
    with pytest.raises(EnvBuildError, match="left-pad"):
        read_manifest(root)


@pytest.mark.parametrize(
    "spec", ["^1.2.3", "~1", ">=1 <2 || 3.x", "latest", "*", "", "npm:lodash@^4"]
)
def test_registry_specs_are_accepted(tmp_path: Path, spec: str) -> None:
    root = package_json(tmp_path, dependencies={"left-pad": spec, "@scope/pkg": "1.0.0"})
    assert read_manifest(root)["dependencies"]["left-pad"] == spec


def test_bad_names_workspaces_and_overrides_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvBuildError, match="not a package name"):
        read_manifest(package_json(tmp_path / "a", dependencies={"../../x": "1.0.0"}))
    with pytest.raises(EnvBuildError, match="workspaces"):
        read_manifest(package_json(tmp_path / "b", workspaces=["../outside"]))
    with pytest.raises(EnvBuildError, match="overrides"):
        read_manifest(package_json(tmp_path / "c", overrides={"x": {"y": "file:/etc"}}))


def lock(**entry: Any) -> bytes:
    return json.dumps(
        {
            "lockfileVersion": 3,
            "packages": {"": {}, "node_modules/x": {"version": "1.0.0", **entry}},
        }
    ).encode()


@pytest.mark.parametrize(
    "data",
    [
        lock(resolved="http://registry.npmjs.org/x/-/x-1.0.0.tgz"),
        lock(resolved="https://evil.example/x/-/x-1.0.0.tgz"),
        lock(resolved="https://user:pw@registry.npmjs.org/x/-/x-1.0.0.tgz"),
        lock(resolved="file:../x.tgz"),
        lock(resolved="git+ssh://git@github.com/u/x.git#abc"),
        lock(link=True, resolved="../outside"),
        lock(version="git+ssh://git@github.com/u/x.git"),
        json.dumps({"lockfileVersion": 3, "packages": {"../../x": {"version": "1.0.0"}}}).encode(),
        json.dumps(
            {"lockfileVersion": 3, "packages": {"packages/a": {"version": "1.0.0"}}}
        ).encode(),
        json.dumps(
            {
                "lockfileVersion": 1,
                "dependencies": {
                    "a": {"version": "1.0.0", "dependencies": {"x": {"version": "github:u/x#abc"}}}
                },
            }
        ).encode(),
    ],
)
def test_lockfile_entries_off_the_registry_are_refused(data: bytes) -> None:
    with pytest.raises(EnvBuildError, match=r"package-lock\.json"):
        check_lockfile(data)


def test_registry_lockfile_is_accepted() -> None:
    assert check_lockfile(lock(resolved="https://registry.npmjs.org/x/-/x-1.0.0.tgz")) == 1


def test_dependency_files_are_read_contained_and_bounded(
    tmp_path: Path, settings: Settings
) -> None:
    root = package_json(tmp_path / "a", devDependencies={"x": "1.0.0"})
    (root / "package-lock.json").symlink_to("/etc/passwd")
    with pytest.raises(EnvBuildError, match="outside the checkout"):
        build_node(root, SPEC, settings)
    big = tmp_path / "b"
    big.mkdir()
    (big / "package.json").write_text(" " * (1024**2 + 1) + "{}")
    with pytest.raises(EnvBuildError, match="larger than"):
        build_node(big, SPEC, settings)
    fifo = tmp_path / "c"
    fifo.mkdir()
    os.mkfifo(fifo / "package.json")
    with pytest.raises(EnvBuildError, match="not a regular file"):
        build_node(fifo, SPEC, settings)


def test_a_refused_dependency_runs_no_npm(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import debugtrace.environments.node as node_env

    monkeypatch.setattr(node_env, "_install", lambda *a: pytest.fail("npm ran"))
    root = package_json(tmp_path, dependencies={"x": "git+https://example.com/x.git"})
    with pytest.raises(EnvBuildError):
        build_node(root, SPEC, settings)


def test_test_script_globs_never_list_the_host_through_a_link(tmp_path: Path) -> None:
    from debugtrace.sandbox.node_projects import MAX_GLOB_MATCHES, detect_node

    (tmp_path / "test").mkdir()
    for i in range(3):
        (tmp_path / "test" / f"t{i}.test.js").write_text("")
    (tmp_path / "host").symlink_to("/")
    (tmp_path / "package.json").write_text(
        '{"scripts": {"test": "mocha test/*.test.js host/etc/* host/*/*/*/*/*/*"}}'
    )
    spec = detect_node(tmp_path)
    assert spec is not None
    words = list(spec.test_command)
    assert [w for w in words if w.startswith("test/")] == [f"test/t{i}.test.js" for i in range(3)]
    assert not any(w.startswith("host/") and "*" not in w for w in words)  # nothing matched
    assert len(words) < MAX_GLOB_MATCHES


def test_report_paths_cannot_probe_host_files(tmp_path: Path) -> None:
    from debugtrace.finalize.jsreports import _relative

    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "a.test.js").write_text("")
    (tmp_path / "link").symlink_to("/etc")
    up = "/x" + "/.." * 12
    # whether /etc/passwd exists on the host must not show in the id
    assert (
        _relative(f"{up}/etc/passwd", tmp_path)
        == _relative(f"{up}/etc/nope", tmp_path)[:-4] + "passwd"
    )
    assert _relative(f"{up}/etc/passwd", tmp_path).startswith("/x/..")
    assert _relative("/workspace/link/passwd", tmp_path) == "/workspace/link/passwd"
    assert _relative("/workspace/test/a.test.js", tmp_path) == "test/a.test.js"
