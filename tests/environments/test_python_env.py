"""A Python project's tests run in an environment of its own, built once and reused.

These build real environments from PyPI (uv, wheels only) into a temporary data directory, then
run the environment's interpreter the way a sandbox does: ``PYTHONPATH`` with the checkout's
source first.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from debugtrace import Settings
from debugtrace.environments import Environment
from debugtrace.environments.build import build_environment
from debugtrace.environments.interpreters import find_interpreters
from debugtrace.errors import EnvBuildError
from debugtrace.sandbox.projects import detect_project
from support.services import require

INDEX = "https://pypi.org/simple/"


@pytest.fixture(scope="module", autouse=True)
def _pypi() -> None:
    try:
        urllib.request.urlopen(INDEX + "pytest/", timeout=10).close()
    except OSError as exc:
        require("PyPI", f"{INDEX} does not answer: {exc}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", load_plugins="")


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def build(root: Path, settings: Settings) -> Environment:
    spec = detect_project(root)
    assert spec is not None
    env = build_environment(root, spec, settings)
    assert env is not None
    return env


def run_python(env: Environment, root: Path, code: str) -> str:
    """What ``code`` prints under the environment's interpreter, as a sandbox would run it."""
    assert env.python
    variables = {k: v.replace("{workspace}", str(root)) for k, v in env.env.items()}
    proc = subprocess.run(
        [env.python, "-c", code],
        cwd=root,
        env={"PATH": os.pathsep.join([*env.bin_dirs, "/usr/bin:/bin"]), **variables},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


SRC_LAYOUT = {
    "pyproject.toml": (
        '[project]\nname = "tinyproj"\nversion = "1.2.3"\ndependencies = ["six>=1.16"]\n'
        '[project.optional-dependencies]\ntest = ["pytest-mock>=3"]\n'
        '[project.entry-points.pytest11]\ntinyproj = "tinyproj.plugin"\n'
    ),
    "src/tinyproj/__init__.py": "import six\nVALUE = six.PY3\n",
    "src/tinyproj/plugin.py": "",
    "tests/test_x.py": "def test_x(mocker):\n    pass\n",
}


def test_a_src_layout_project_gets_its_dependencies_test_plugins_and_itself(
    tmp_path: Path, settings: Settings
) -> None:
    root = project(tmp_path / "p", SRC_LAYOUT)
    env = build(root, settings)
    assert not env.reused
    assert {p.split("==")[0].lower() for p in env.pins} >= {"six", "pytest", "pytest-mock"}
    assert not any(p.lower().startswith("tinyproj==") for p in env.pins)  # from the checkout
    code = (
        "import importlib.metadata as m, tinyproj; "
        "print(tinyproj.VALUE, m.version('tinyproj'), "
        "sorted(e.name for e in m.entry_points(group='pytest11')))"
    )
    # the project's own plugin and pytest-mock's are both found by pytest's autoload
    assert run_python(env, root, code) == "True 1.2.3 ['pytest_mock', 'tinyproj']"
    assert "python 3." in env.description and "(src) first on sys.path" in env.description


def test_a_second_build_of_the_same_project_installs_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    first = build(project(tmp_path / "a", SRC_LAYOUT), settings)
    # another checkout of the same project (before/after, or a later finalize)
    second = build(project(tmp_path / "b", SRC_LAYOUT), settings)
    assert (second.reused, second.path, second.pins) == (True, first.path, first.pins)
    assert "(reused)" in second.description


def test_the_checkout_shadows_an_installed_package_of_the_same_name(
    tmp_path: Path, settings: Settings
) -> None:
    # pytest depends on iniconfig: the environment has it installed, the project IS iniconfig
    root = project(
        tmp_path / "p",
        {
            "pyproject.toml": '[project]\nname = "iniconfig"\nversion = "0.0.1"\n',
            "src/iniconfig/__init__.py": "FROM_CHECKOUT = True\n",
        },
    )
    env = build(root, settings)
    code = (
        "import importlib.metadata as m, iniconfig; "
        "print(iniconfig.FROM_CHECKOUT, m.version('iniconfig'))"
    )
    assert run_python(env, root, code) == "True 0.0.1"
    site = next(env.path.glob("lib/python*/site-packages"))
    assert [p.name for p in site.glob("iniconfig*")] == ["iniconfig-0.0.1.dist-info"]


def test_dev_extras_that_cannot_be_installed_are_left_out_with_a_note(
    tmp_path: Path, settings: Settings
) -> None:
    root = project(
        tmp_path / "p",
        {
            "pyproject.toml": (
                '[project]\nname = "p"\nversion = "1"\n'
                '[project.optional-dependencies]\ndev = ["debugtrace-no-such-package-xyz==9"]\n'
            ),
            "test_p.py": "def test(): pass\n",
        },
    )
    env = build(root, settings)
    assert "dev extras could not be installed" in env.description


def test_a_runtime_dependency_without_a_wheel_is_a_clear_build_error(
    tmp_path: Path, settings: Settings
) -> None:
    # docopt has only ever been released as an sdist: building it would run its setup.py
    root = project(
        tmp_path / "p",
        {
            "pyproject.toml": '[project]\nname = "p"\ndependencies = ["docopt==0.6.2"]\n',
            "test_p.py": "",
        },
    )
    with pytest.raises(EnvBuildError, match="docopt") as err:
        build(root, settings)
    assert "wheel" in str(err.value) or "binary" in str(err.value)
    # nothing half-built is reused
    assert not list((settings.data_dir / "envs" / "python").glob("*/.debugtrace-complete"))


def test_a_test_dependency_without_a_wheel_is_left_out_and_said(
    tmp_path: Path, settings: Settings
) -> None:
    # Markdown's tox.ini asks for pytidylib (an sdist): its tests skip without it
    root = project(
        tmp_path / "p",
        {"requirements-test.txt": "docopt==0.6.2\niniconfig\n", "test_p.py": ""},
    )
    env = build(root, settings)
    assert "left out (test dependencies with no wheel): docopt" in env.description
    assert any(p.startswith("iniconfig==") for p in env.pins)


def test_requires_python_picks_an_interpreter_that_fits(tmp_path: Path, settings: Settings) -> None:
    newer = [i for i in find_interpreters() if i.version[:2] >= (3, 12)]
    if not newer:
        pytest.skip("this machine has no Python 3.12 or newer")
    root = project(
        tmp_path / "p",
        {"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.12"\n', "test_p.py": ""},
    )
    env = build(root, settings)
    assert env.python_version is not None
    assert tuple(map(int, env.python_version.split("."))) >= (3, 12)
    assert run_python(env, root, "import sys; print(sys.version_info >= (3, 12))") == "True"


def test_no_interpreter_fitting_requires_python_is_a_build_error_naming_those_found(
    tmp_path: Path, settings: Settings
) -> None:
    root = project(
        tmp_path / "p",
        {"pyproject.toml": '[project]\nname = "p"\nrequires-python = "<3"\n', "test_p.py": ""},
    )
    with pytest.raises(EnvBuildError, match=r"requires-python '<3' \(found: .*3\.\d+"):
        build(root, settings)


def test_the_build_record_names_the_pins_and_interpreter(
    tmp_path: Path, settings: Settings
) -> None:
    env = build(project(tmp_path / "p", SRC_LAYOUT), settings)
    record = json.loads((env.path / ".debugtrace-complete").read_text())
    assert record["pins"] == list(env.pins) and record["python"]


def test_pip_builds_the_same_environment_where_uv_is_not_installed(
    tmp_path: Path, settings: Settings
) -> None:
    with_uv = build(project(tmp_path / "a", SRC_LAYOUT), settings)
    with_pip = build(
        project(tmp_path / "b", SRC_LAYOUT),
        settings.model_copy(update={"env_installer": "pip", "data_dir": tmp_path / "pip"}),
    )
    names = {p.split("==")[0].lower() for p in with_pip.pins}
    assert names == {p.split("==")[0].lower() for p in with_uv.pins}
    code = "import importlib.metadata as m, tinyproj; print(m.version('tinyproj'))"
    assert run_python(with_pip, tmp_path / "b", code) == "1.2.3"
