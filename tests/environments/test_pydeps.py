"""What a Python project's files say it needs and is, read as data (nothing is built or run)."""

from __future__ import annotations

from pathlib import Path

from debugtrace.environments.pydeps import read_dependencies, read_project_meta
from debugtrace.sandbox.projects import detect_project


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_test_extras_and_the_extras_the_project_names_itself_with_are_installed(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": (
                '[project]\nname = "p"\ndependencies = ["six"]\n'
                "[project.optional-dependencies]\n"
                'test = ["p[yaml]", "pytest-mock"]\nyaml = ["pyyaml"]\ndocs = ["sphinx"]\n'
                'dev = ["p[test]", "ruff"]\n'
            )
        },
    )
    deps = read_dependencies(root, ["pyproject.toml"])
    assert deps.requirements == ["six", "pytest-mock", "pyyaml"]
    assert deps.optional == ["ruff"]  # dev: installed when it can be


def test_tox_deps_and_extras_count(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "setup.cfg": (
                "[metadata]\nname = p\n[options]\ninstall_requires = attrs\n"
                "[options.extras_require]\ntesting = hypothesis\n"
            ),
            "tox.ini": (
                "[tox]\nenvlist = py311\n[testenv]\nextras = testing\n"
                "deps =\n    pytest>=7\n    py311: freezegun\n    -r requirements/ci.txt\n"
                "    {[base]deps}\n    .[testing]\n"
            ),
            "requirements/ci.txt": "coverage\n",
        },
    )
    spec = detect_project(root)
    assert spec is not None
    assert set(spec.dependency_files) >= {"setup.cfg", "tox.ini", "requirements/ci.txt"}
    deps = read_dependencies(root, spec.dependency_files)
    assert deps.requirements == ["attrs", "pytest>=7", "freezegun", "coverage", "hypothesis"]
    assert any("tox substitution skipped" in n for n in deps.ignored)


def test_the_project_describes_itself_from_static_metadata(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": (
                '[project]\nname = "Some.Pkg"\ndynamic = ["version"]\n'
                'requires-python = ">=3.9"\n'
                '[project.entry-points.pytest11]\nsomepkg = "some_pkg.plugin"\n'
                '[project.scripts]\nsome = "some_pkg.cli:main"\n'
            ),
            "src/some_pkg/__init__.py": '"""Doc."""\n__version__ = "4.5.6"\n',
        },
    )
    meta = read_project_meta(root)
    assert (meta.name, meta.version, meta.requires_python) == ("Some.Pkg", "4.5.6", ">=3.9")
    assert meta.import_root == "src"
    assert meta.entry_points == {
        "pytest11": {"somepkg": "some_pkg.plugin"},
        "console_scripts": {"some": "some_pkg.cli:main"},
    }


def test_setup_py_and_setup_cfg_say_the_same_things(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "setup.cfg": (
                "[options]\npackage_dir =\n    = lib\npython_requires = >=3.8\n"
                "[options.entry_points]\npytest11 =\n    mine = mine.plugin\n"
            ),
            "setup.py": "from setuptools import setup\nsetup(name='mine', version='0.9')\n",
            "lib/mine/__init__.py": "",
        },
    )
    meta = read_project_meta(root)
    assert (meta.name, meta.version, meta.import_root) == ("mine", "0.9", "lib")
    assert meta.entry_points == {"pytest11": {"mine": "mine.plugin"}}


def test_a_unittest_project_configured_in_tox_ini_runs_under_unittest(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "setup.py": "from setuptools import setup\nsetup(name='u')\n",
            "tox.ini": (
                "[testenv]\ncommands = python -m unittest discover -s tests -p 'test_*.py'\n"
            ),
            "tests/test_u.py": "import unittest\n",
        },
    )
    spec = detect_project(root)
    assert spec is not None and spec.report_format == "unittest"
    assert spec.test_command == (
        *("{python}", "-m", "unittest", "discover", "-v"),
        *("-s", "tests", "-p", "test_*.py"),
    )


def test_a_project_that_configures_pytest_runs_under_pytest(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "tox.ini": "[testenv]\ncommands = python -m unittest\n[pytest]\naddopts = -q\n",
            "tests/test_u.py": "",
        },
    )
    spec = detect_project(root)
    assert spec is not None and spec.report_format == "junit"
    assert "--continue-on-collection-errors" in spec.test_command


def test_the_version_module_a_vcs_build_plugin_writes_is_known(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": (
                '[project]\nname = "p"\nversion = "1.2.3"\n'
                '[tool.hatch]\nbuild.hooks.vcs.version-file = "src/p/version.py"\n'
            )
        },
    )
    meta = read_project_meta(root)
    assert meta.version_file == "src/p/version.py"
    namespace: dict[str, object] = {}
    exec(meta.version_module(), namespace)
    assert (namespace["version"], namespace["version_tuple"]) == ("1.2.3", (1, 2, 3))


def test_a_version_file_outside_the_checkout_is_ignored(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"pyproject.toml": '[tool.setuptools_scm]\nwrite_to = "../../etc/evil.py"\n'},
    )
    assert read_project_meta(root).version_file is None


def test_a_version_file_never_names_git_in_any_spelling(tmp_path: Path) -> None:
    for name in ("./.git/info/x.py", ".GIT/x.py", "a/.git/x.py"):
        root = write(tmp_path / name.replace("/", "_"), {"pyproject.toml": ""})
        (root / "pyproject.toml").write_text(f'[tool.setuptools_scm]\nwrite_to = "{name}"\n')
        assert read_project_meta(root).version_file is None, name


def test_deeply_nested_toml_is_ignored_not_a_crash(tmp_path: Path) -> None:
    root = write(tmp_path, {"pyproject.toml": "x = " + "[" * 50_000 + "]" * 50_000 + "\n"})
    assert read_project_meta(root).name is None
    assert read_dependencies(root, ["pyproject.toml"]).requirements == []
