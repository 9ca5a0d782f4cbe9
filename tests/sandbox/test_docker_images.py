"""Sandbox and environment images: what goes into them, reuse by key, and the docker sandbox
running a project's tests in its environment image (real engine, wheels from the host's pip)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Settings
from debugtrace.errors import SandboxError
from debugtrace.sandbox import ProjectSpec, ResourceLimits
from debugtrace.sandbox.docker import images as docker_images
from debugtrace.sandbox.docker.images import (
    BASE_IMAGE,
    ENV_REPO,
    KEY_LABEL,
    build_sandbox_image,
    ensure_env_image,
    project_requirements,
)
from debugtrace.sandbox.docker.sandbox import DockerSandbox
from debugtrace.sandbox.projects import detect_project
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

_L = ResourceLimits(timeout_s=60)


# -- what a project's dependency files declare (no engine needed) -------------------------------


def test_requirements_files_drop_editable_and_local_lines_and_read_includes(
    tmp_path: Path,
) -> None:
    (tmp_path / "requirements-base.txt").write_text("attrs\n")
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nsix==1.16.0  # inline comment\n-e .\n./vendor/pkg\n"
        "-r requirements-base.txt\nlocal @ file:///tmp/x\nrequests[socks]>=2 ; python_version>'3'\n"
    )
    lines = project_requirements(tmp_path, ["requirements.txt"])
    # includes are read here (inside the checkout only); pip gets specifiers, normalised
    assert lines == ["six==1.16.0", "attrs", 'requests[socks]>=2; python_version > "3"']


def test_pyproject_dependencies_and_test_extras_without_the_project_itself(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "My_Proj"\ndependencies = ["six>=1.16", "attrs"]\n'
        '[project.optional-dependencies]\ntest = ["my-proj[extra]", "hypothesis"]\n'
        'docs = ["sphinx"]\n[dependency-groups]\ntests = ["iniconfig", {include-group = "x"}]\n'
    )
    assert project_requirements(tmp_path, ["pyproject.toml"]) == [
        "six>=1.16",
        "attrs",
        "hypothesis",
        "iniconfig",
    ]


def test_setup_cfg_and_setup_py_are_read_without_running_them(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text(
        "[metadata]\nname = p\n[options]\ninstall_requires =\n    six\n    attrs>=20\n"
        "[options.extras_require]\ntesting = mock\n"
    )
    (tmp_path / "setup.py").write_text(
        "import sys\nfrom setuptools import setup\nsys.exit('must not run')\n"
        "setup(name='p', install_requires=['six', 'packaging'], "
        "extras_require={'test': ['pytest-mock'], 'doc': ['sphinx']}, tests_require=DYNAMIC)\n"
    )
    lines = project_requirements(tmp_path, ["setup.cfg", "setup.py"])
    assert lines == ["six", "attrs>=20", "mock", "packaging", "pytest-mock"]


def test_no_env_image_without_dependency_files_or_for_other_kinds(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    node = ProjectSpec(
        kind="node", test_command=("npm", "test"), dependency_files=("package.json",)
    )
    bare = ProjectSpec(kind="python", test_command=("pytest",))
    gone = ProjectSpec(kind="python", test_command=("pytest",), dependency_files=("setup.py",))
    for project in (node, bare, gone):  # the client is not even touched
        assert ensure_env_image(None, IMAGE, tmp_path, project) == IMAGE


# -- against a real engine ------------------------------------------------------------------------


def _python_project(path: Path, requirements: str | None, *, src: bool = False) -> ProjectSpec:
    tests = path / "tests"
    tests.mkdir(parents=True)
    (tests / "test_six.py").write_text("import six\n\n\ndef test_six():\n    assert six.PY3\n")
    if src:
        (path / "src" / "mypkg").mkdir(parents=True)
        (path / "src" / "mypkg" / "__init__.py").write_text("VALUE = 42\n")
    if requirements is not None:
        (path / "requirements.txt").write_text(requirements)
    project = detect_project(path)
    assert project is not None
    return project


@pytest.fixture
def images(docker_engine: Any) -> Iterator[set[str]]:  # noqa: F811
    """Tags made by the test; removed at the end (unique requirements keep them throwaway)."""
    made: set[str] = set()
    yield made
    for tag in made:
        with contextlib.suppress(Exception):
            docker_engine.images.remove(tag, force=True)


def _unique_requirements(body: str) -> str:
    return f"# debugtrace test {uuid.uuid4().hex}\n{body}"


@pytest.mark.docker
def test_env_image_is_built_once_reused_and_rekeyed_on_change(
    docker_engine: Any,  # noqa: F811
    images: set[str],
    tmp_path: Path,
) -> None:
    project = _python_project(tmp_path / "p", _unique_requirements("six==1.16.0\n"))
    assert project.dependency_files == ("requirements.txt",)
    log: list[str] = []
    tag = ensure_env_image(docker_engine, IMAGE, tmp_path / "p", project, progress=log.append)
    images.add(tag)
    assert tag.startswith(f"{ENV_REPO}:py-") and len(tag) == len(f"{ENV_REPO}:py-") + 16
    assert any(m.startswith("pip download") and "six==1.16.0" in m for m in log)
    assert any(m.startswith(f"docker build {tag}") for m in log)
    first = docker_engine.images.get(tag)
    assert first.labels[KEY_LABEL].startswith(tag.rsplit("-", 1)[1])

    again: list[str] = []
    assert ensure_env_image(docker_engine, IMAGE, tmp_path / "p", project, again.append) == tag
    assert again == []  # no download, no build
    assert docker_engine.images.get(tag).id == first.id

    (tmp_path / "p" / "requirements.txt").write_text(_unique_requirements("six==1.16.0\n"))
    other = ensure_env_image(docker_engine, IMAGE, tmp_path / "p", project)
    images.add(other)
    assert other != tag
    assert docker_engine.images.get(other).id != first.id


@pytest.mark.docker
def test_the_sandbox_runs_a_project_in_its_env_image(
    docker_engine: Any,  # noqa: F811
    images: set[str],
    tmp_path: Path,
) -> None:
    sandbox = DockerSandbox(Settings(docker_image=IMAGE))
    with_deps = _python_project(tmp_path / "a", _unique_requirements("six==1.16.0\n"), src=True)
    without = _python_project(tmp_path / "b", None)
    ha = sandbox.prepare(tmp_path / "a", with_deps)
    hb = sandbox.prepare(tmp_path / "b", without)
    try:
        images.add(ha.state["image_tag"])
        assert ha.state["image_tag"].startswith(f"{ENV_REPO}:py-")
        assert ha.state["image"] == docker_engine.images.get(ha.state["image_tag"]).id
        assert hb.state["image_tag"] == IMAGE  # nothing to install: the base image itself

        r = sandbox.run(ha, ["python3", "-c", "import six; print(six.__version__)"], _L)
        assert (r.exit_code, r.output) == (0, "1.16.0\n")
        r = sandbox.run(hb, ["python3", "-c", "import six"], _L)
        assert r.exit_code == 1 and "No module named 'six'" in r.output

        # the source is importable from anywhere without installing the project (src layout)
        code = "import os, mypkg; print(mypkg.VALUE, os.environ['PYTHONPATH'])"
        r = sandbox.run(ha, ["sh", "-c", f'cd /tmp && python3 -c "{code}"'], _L)
        assert (r.exit_code, r.output) == (0, "42 /workspace/src:/workspace\n")
        # ... the venv stays read-only, and the tests run offline
        r = sandbox.run(ha, ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"], _L)
        assert r.exit_code == 0, r.output
        assert "1 passed" in r.output
    finally:
        sandbox.close(ha)
        sandbox.close(hb)


@pytest.mark.docker
def test_a_dependency_pip_cannot_download_is_a_sandbox_error_with_pips_words(
    docker_engine: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = _python_project(tmp_path / "p", _unique_requirements("six==0.0.0.999\n"))
    sandbox = DockerSandbox(Settings(docker_image=IMAGE))
    made: list[str] = []  # the engine is shared: spy on this client rather than list everything
    for kind in ("volumes", "containers"):
        collection = getattr(sandbox.client, kind)
        monkeypatch.setattr(collection, "create", lambda *a, _k=kind, **kw: made.append(_k))
    with pytest.raises(SandboxError) as info:
        sandbox.prepare(tmp_path / "p", project)
    message = str(info.value)
    assert "pip download failed" in message
    assert "six==0.0.0.999" in message
    assert "No matching distribution" in message  # pip's own last lines
    assert made == []  # it failed before making any container or volume


@pytest.mark.docker
def test_build_sandbox_image_from_the_debian_base_and_reuse_it(
    docker_engine: Any,  # noqa: F811
    images: set[str],
) -> None:
    tag = f"debugtrace-python:test-{uuid.uuid4().hex[:8]}"
    images.add(tag)
    log: list[str] = []
    assert build_sandbox_image(docker_engine, tag=tag, base=BASE_IMAGE, progress=log.append) == tag
    assert any("pip download" in m and "pytest" in m for m in log)
    image = docker_engine.images.get(tag)
    assert image.labels[KEY_LABEL]
    config = image.attrs["Config"]
    assert (
        "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        in (config["Env"])
    )
    out = docker_engine.containers.run(
        tag,
        ["sh", "-c", "id -u; echo $HOME; pytest --version"],
        user="1000",
        environment={"HOME": "/home/sandbox"},
        network_mode="none",
        labels={"debugtrace": "1"},
        remove=True,
    ).decode()
    assert out.startswith("1000\n/home/sandbox\npytest ")

    again: list[str] = []
    assert (
        build_sandbox_image(docker_engine, tag=tag, base=BASE_IMAGE, progress=again.append) == tag
    )
    assert docker_engine.images.get(tag).id == image.id
    assert again == [f"{tag} is present (key {image.labels[KEY_LABEL]}); nothing to build"]


@pytest.mark.docker
def test_build_sandbox_image_names_a_missing_base(docker_engine: Any) -> None:  # noqa: F811
    import docker

    tag = f"debugtrace-python:test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SandboxError, match=r"debugtrace-no-such-base:0.*is missing"):
        build_sandbox_image(
            docker_engine, tag=tag, base="debugtrace-no-such-base:0", packages=(), progress=None
        )
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(tag)


@pytest.mark.docker
def test_build_sandbox_image_without_any_base_says_how_to_get_one(
    docker_engine: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_images, "BASE_IMAGE", "debugtrace-no-such-base:0")
    monkeypatch.setattr(docker_images, "SLIM_IMAGE", "debugtrace-no-such-slim:0")
    with pytest.raises(SandboxError) as info:
        build_sandbox_image(docker_engine, tag=f"debugtrace-python:test-{uuid.uuid4().hex[:8]}")
    message = str(info.value)
    assert message.startswith("no base image:")
    assert "scripts/build-base-image.sh" in message
    assert "python:3.11-slim available" in message
