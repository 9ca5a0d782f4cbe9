"""The docker sandbox runs a project's tests in the *same* environment the local sandbox uses.

Real engine, real builds: each environment is built on the host by
:func:`debugtrace.environments.build.build_environment` (PyPI, npm), then the docker sandbox makes
its image from it (the pins in a venv ``/opt/env``, Debian's nodejs) and the tests run offline in
it through finalize's own run path (:func:`debugtrace.finalize.runs.run_side`).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.environments import Environment
from debugtrace.environments.build import build_environment
from debugtrace.errors import EnvBuildError, SandboxError
from debugtrace.finalize.runs import SideRun, run_side
from debugtrace.sandbox import ProjectSpec, ResourceLimits
from debugtrace.sandbox.docker import images as docker_images
from debugtrace.sandbox.docker.images import ENV_REPO, KEY_LABEL, NODE_LABEL, NODE_REPO
from debugtrace.sandbox.docker.sandbox import DockerSandbox
from debugtrace.sandbox.projects import detect_project
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name
from support.services import require

pytestmark = pytest.mark.docker

PYPI = "https://pypi.org/simple/"
NPM = "https://registry.npmjs.org/"
_L = ResourceLimits(timeout_s=120)


def _answers(url: str, what: str) -> None:
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except OSError as exc:
        require(what, f"{url} does not answer: {exc}")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One data dir for the module: environments built once are reused by later tests."""
    return Settings(data_dir=tmp_path_factory.mktemp("data"), load_plugins="")


@pytest.fixture
def sandbox(docker_engine: Any) -> DockerSandbox:  # noqa: F811
    return DockerSandbox(Settings(docker_image=IMAGE))


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _with_environment(root: Path, settings: Settings) -> ProjectSpec:
    """What finalize does before the runs: detect, write the support files, build the
    environment on the host."""
    from dataclasses import replace

    spec = detect_project(root)
    assert spec is not None
    for name, data in spec.support_files.items():
        (root / name).write_bytes(data)
    try:
        env = build_environment(root, spec, settings)
    except EnvBuildError as exc:
        if "resolve" in str(exc) or "connect" in str(exc).lower():
            require("the package index", f"the environment could not be downloaded: {exc}")
        raise
    assert env is not None
    return replace(spec, environment=env)


def _run(sandbox: DockerSandbox, root: Path, spec: ProjectSpec) -> SideRun:
    run = run_side(sandbox, sandbox.python_for(spec), root, spec, _L, "after")
    assert run.problem is None, f"{run.problem}\n{run.result.output}"
    return run


# -- Python ---------------------------------------------------------------------------------------

SRC_LAYOUT = {
    "pyproject.toml": (
        '[project]\nname = "dockerproj"\nversion = "2.5.0"\ndependencies = ["six>=1.16"]\n'
        '[project.entry-points."dockerproj.things"]\nthing = "dockerproj:VALUE"\n'
    ),
    "src/dockerproj/__init__.py": "import six\n\nVALUE = six.PY3\n",
    "tests/test_it.py": (
        "import os, sys, time\n"
        "from importlib.metadata import entry_points, version\n\n"
        "import dockerproj\n\n\n"
        "def test_the_checkout_is_imported():\n"
        "    assert dockerproj.VALUE is True\n"
        "    assert dockerproj.__file__ == '/workspace/src/dockerproj/__init__.py'\n\n\n"
        "def test_its_dist_info_stands_for_it():\n"
        "    assert version('dockerproj') == '2.5.0'\n"
        "    eps = entry_points(group='dockerproj.things')\n"
        "    assert [ep.load() for ep in eps] == [True]\n\n\n"
        "def test_the_environment_of_the_run():\n"
        "    assert sys.prefix == os.environ['VIRTUAL_ENV'] == '/opt/env'\n"
        "    assert os.environ['PATH'].startswith('/opt/env/bin:')\n"
        "    assert (os.environ['TZ'], os.environ['PYTHONHASHSEED']) == ('UTC', '0')\n"
        "    assert os.environ['LC_ALL'] == 'C.UTF-8' and time.tzname[0] == 'UTC'\n\n\n"
        "def test_fails():\n"
        "    assert False\n"
    ),
}


@pytest.fixture(scope="module")
def pypi() -> None:
    _answers(PYPI + "pytest/", "PyPI")


@pytest.mark.usefixtures("pypi")
def test_a_src_layout_project_with_a_dependency_runs_in_its_environment(
    sandbox: DockerSandbox,
    settings: Settings,
    tmp_path: Path,
    docker_engine: Any,  # noqa: F811
) -> None:
    root = _write(tmp_path / "p", SRC_LAYOUT)
    spec = _with_environment(root, settings)
    env = spec.environment
    assert env is not None and env.kind == "python"
    assert sandbox.python_for(spec) == "/opt/env/bin/python"  # never the host's path

    run = _run(sandbox, root, spec)
    assert run.report.outcomes == {
        "tests/test_it.py::test_the_checkout_is_imported": "passed",
        "tests/test_it.py::test_its_dist_info_stands_for_it": "passed",
        "tests/test_it.py::test_the_environment_of_the_run": "passed",
        "tests/test_it.py::test_fails": "failed",
    }
    # the image holds exactly the environment's pins (and nothing of the project)
    handle = sandbox.prepare(root, spec)
    try:
        tag = handle.state["image_tag"]
        assert tag.startswith(f"{ENV_REPO}:py-")
        assert handle.state["note"].startswith(f"docker image {tag} (")
        freeze = sandbox.run(
            handle,
            ["/opt/env/bin/python", "-c", _FREEZE],
            _L,
        )
        assert freeze.exit_code == 0, freeze.output
        assert sorted(freeze.output.split()) == sorted([*env.pins, "dockerproj==2.5.0"])
    finally:
        sandbox.close(handle)


_FREEZE = (
    "from importlib.metadata import distributions\n"
    "print('\\n'.join(f\"{d.metadata['Name']}=={d.version}\" for d in distributions()))"
)


@pytest.mark.usefixtures("pypi")
def test_the_env_image_is_reused_on_a_second_prepare(
    sandbox: DockerSandbox,
    settings: Settings,
    tmp_path: Path,
    docker_engine: Any,  # noqa: F811
) -> None:
    root = _write(tmp_path / "p", SRC_LAYOUT)
    spec = _with_environment(root, settings)
    first = sandbox.prepare(root, spec)
    sandbox.close(first)
    said: list[str] = []
    sandbox.progress = said.append
    again = sandbox.prepare(root, spec)
    sandbox.close(again)
    assert said == []  # no download, no build
    assert again.state["image"] == first.state["image"]
    assert "(reused)" in again.state["note"]
    image = docker_engine.images.get(again.state["image_tag"])
    assert image.id == again.state["image"]
    assert again.state["image_tag"].endswith(image.labels[KEY_LABEL][:16])


def _copy_of_installed(package: str) -> dict[str, str]:
    """The source files of the installed ``package`` (what a checkout of it would hold)."""
    found = importlib.util.find_spec(package)
    assert found is not None and found.origin is not None
    folder = Path(found.origin).parent
    return {f"{package}/{p.name}": p.read_text() for p in folder.glob("*.py")}


@pytest.mark.usefixtures("pypi")
def test_a_project_pytest_depends_on_runs_from_the_checkout(
    sandbox: DockerSandbox, settings: Settings, tmp_path: Path
) -> None:
    # a checkout of iniconfig (pytest imports iniconfig to read its own configuration): the
    # checkout's copy, marked, must be what runs, not the one pytest brought
    files = _copy_of_installed("iniconfig")
    files["iniconfig/__init__.py"] += "\nFROM_THE_CHECKOUT = True\n"
    files["pyproject.toml"] = '[project]\nname = "iniconfig"\nversion = "99.1"\n'
    files["testing/test_mine.py"] = (
        "from importlib.metadata import version\n\n"
        "import iniconfig\n\n\n"
        "def test_the_checkout_wins():\n"
        "    assert iniconfig.FROM_THE_CHECKOUT\n"
        "    assert iniconfig.__file__ == '/workspace/iniconfig/__init__.py'\n"
        "    assert version('iniconfig') == '99.1'\n"
    )
    root = _write(tmp_path / "iniconfig", files)
    spec = _with_environment(root, settings)
    assert spec.environment is not None
    assert not any(p.startswith("iniconfig==") for p in spec.environment.pins)
    run = _run(sandbox, root, spec)
    assert run.report.outcomes == {"testing/test_mine.py::test_the_checkout_wins": "passed"}


def _hand_made(tmp_path: Path, pins: tuple[str, ...], python_version: str) -> Environment:
    """An environment as the host builder describes one (the docker sandbox only reads its pins,
    its project dist-info, its variables and its Python version)."""
    site = tmp_path / "env" / "lib" / f"python{python_version}" / "site-packages"
    site.mkdir(parents=True)
    return Environment(
        kind="python",
        key="hand-made",
        path=tmp_path / "env",
        description="hand-made",
        python=str(tmp_path / "env" / "bin" / "python"),
        python_version=python_version,
        env={"PYTHONPATH": "{workspace}", "VIRTUAL_ENV": str(tmp_path / "env")},
        pins=pins,
    )


@pytest.mark.usefixtures("pypi")
def test_a_pin_without_a_wheel_for_the_images_python_is_named(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    env = _hand_made(tmp_path, ("six==1.16.0", "six-nonexistent-debugtrace==0.0.1"), "3.12")
    spec = ProjectSpec(kind="python", test_command=("pytest",), environment=env)
    (tmp_path / "wt").mkdir()
    with pytest.raises(EnvBuildError) as info:
        sandbox.prepare(tmp_path / "wt", spec)
    message = str(info.value)
    assert "six-nonexistent-debugtrace==0.0.1" in message
    assert "whose Python is 3.11 (the environment was built with 3.12)" in message


@pytest.mark.usefixtures("pypi")
def test_another_host_python_is_said_in_the_note_and_every_run(
    sandbox: DockerSandbox,
    tmp_path: Path,
    docker_engine: Any,  # noqa: F811
) -> None:
    env = _hand_made(tmp_path, ("six==1.16.0",), "3.12")
    spec = ProjectSpec(kind="python", test_command=("pytest",), environment=env)
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / "mine.py").write_text("import six\nprint(six.__version__)\n")
    handle = sandbox.prepare(tmp_path / "wt", spec)
    try:
        assert "built with Python 3.12 on the host" in handle.state["note"]
        r = sandbox.run(handle, [sandbox.python_for(spec), "-c", "import mine"], _L)
        assert r.exit_code == 0
        assert r.output.startswith("1.16.0\n")  # the checkout on sys.path, six from the pins
        assert "[debugtrace sandbox: the environment was built with Python 3.12" in r.output
        r = sandbox.run(handle, ["python", "-c", "import pytest"], _L)
        assert "No module named 'pytest'" in r.output  # only the pins: not the sandbox's venv
    finally:
        sandbox.close(handle)


def test_without_an_environment_the_sandbox_image_is_used(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    spec = ProjectSpec(kind="python", test_command=("pytest",))
    assert docker_images.ensure_env_image(None, IMAGE, tmp_path, spec) == IMAGE
    assert sandbox.python_for(spec) == "python3"
    handle = sandbox.prepare(tmp_path, spec)
    try:
        assert handle.state["image_tag"] == IMAGE
        r = sandbox.run(handle, ["sh", "-c", "echo $TZ $PYTHONHASHSEED $LC_ALL; pytest -V"], _L)
        assert r.exit_code == 0, r.output
        assert r.output.startswith("UTC 0 C.UTF-8\npytest ")
    finally:
        sandbox.close(handle)


# -- Node -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_host() -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        require("npm", "node and npm are not installed on the host (apt-get install nodejs npm)")
    if shutil.which("apt-get") is None:
        require("apt-get", "the host has no apt-get to download Debian's nodejs with")
    _answers(NPM + "semver", "the npm registry")


NODE_PROJECT = {
    "package.json": json.dumps(
        {
            "name": "p",
            "version": "1.0.0",
            "scripts": {"test": "node --test"},
            "devDependencies": {"semver": "7.6.3"},
        }
    ),
    "test/version.test.js": (
        "const test = require('node:test');\n"
        "const assert = require('node:assert');\n"
        "const semver = require('semver');\n\n"
        "test('semver from node_modules', () => {\n"
        "  assert.ok(semver.gt('1.2.4', '1.2.3'));\n"
        "});\n\n"
        "test('runs on node 18', () => {\n"
        "  assert.strictEqual(process.versions.node.split('.')[0], '18');\n"
        "});\n\n"
        "test('fails', () => {\n"
        "  assert.strictEqual(1, 2);\n"
        "});\n"
    ),
}


@pytest.mark.usefixtures("node_host")
def test_a_node_project_runs_node_test_with_its_node_modules(
    sandbox: DockerSandbox,
    settings: Settings,
    tmp_path: Path,
    docker_engine: Any,  # noqa: F811
) -> None:
    root = _write(tmp_path / "p", NODE_PROJECT)
    spec = _with_environment(root, settings)
    assert spec.environment is not None and "node_modules" in spec.environment.links
    run = _run(sandbox, root, spec)
    assert run.report.outcomes == {
        "test/version.test.js::semver from node_modules": "passed",
        "test/version.test.js::runs on node 18": "passed",
        "test/version.test.js::fails": "failed",
    }
    assert not (root / "node_modules").exists()  # copied into the volume, not the worktree

    # a worktree the local sandbox prepared links node_modules to the host folder: copied too
    (root / "node_modules").symlink_to(spec.environment.links["node_modules"])
    handle = sandbox.prepare(root, spec)
    try:
        tag = handle.state["image_tag"]
        assert tag.startswith(f"{NODE_REPO}:")
        version = docker_engine.images.get(tag).labels[NODE_LABEL]
        assert version.startswith("18.")
        script = (
            "node --version; echo $PATH; test ! -L node_modules && "
            "test -L node_modules/.bin/semver && semver 1.2.3"
        )
        r = sandbox.run(handle, ["sh", "-c", script], _L)
        assert r.exit_code == 0, r.output
        node, path, semver = r.output.split()
        assert node.startswith("v18.") and version.startswith(node[1:])
        assert path.startswith("/workspace/node_modules/.bin:")
        assert semver == "1.2.3"
        # the copy belongs to the sandbox user, like the rest of the workspace
        r = sandbox.run(handle, ["stat", "-c", "%u", "node_modules/semver/package.json"], _L)
        assert r.output.strip() == "1000"
    finally:
        sandbox.close(handle)


@pytest.mark.usefixtures("node_host")
def test_without_apt_the_node_image_says_what_to_do(
    sandbox: DockerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_images, "_NODE_RECIPE", "no-such-recipe-yet")  # not built
    monkeypatch.setattr(docker_images.shutil, "which", lambda name: None)
    spec = ProjectSpec(kind="node", test_command=("node", "--test"))
    with pytest.raises(SandboxError) as info:
        sandbox.prepare(tmp_path, spec)
    message = str(info.value)
    assert "this host has no apt-get" in message
    assert "DEBUGTRACE_DOCKER_IMAGE" in message and "DEBUGTRACE_SANDBOX=local" in message
