"""Node runner detection: scripts.test understood as one runner invocation, rebuilt as an argv
(never a shell) that writes a per-test report; anything else stays a pass/fail `npm test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from debugtrace.finalize.jsreports import PARSERS
from debugtrace.sandbox.node_projects import (
    MOCHA_REPORTER,
    NODE_REPORTER,
    NPM_TEST,
    detect_node,
    node_reporter_source,
)

NODE_FLAGS = (
    f"--test-reporter=./{NODE_REPORTER}",
    "--test-reporter-destination={report}",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
)


def project(tmp_path: Path, test: str | None, **scripts: str) -> Path:
    doc: dict[str, object] = {"name": "p", "version": "1.0.0"}
    all_scripts = dict(scripts)
    if test is not None:
        all_scripts["test"] = test
    doc["scripts"] = all_scripts
    (tmp_path / "package.json").write_text(json.dumps(doc))
    return tmp_path


def test_node_test_runs_node_with_our_reporter(tmp_path: Path) -> None:
    spec = detect_node(project(tmp_path, "node --test test/"))
    assert spec is not None
    assert spec.kind == "node"
    assert spec.test_command == ("node", *NODE_FLAGS, "--test", "test/")
    assert spec.report_format == "node-test"
    assert spec.support_files == {NODE_REPORTER: node_reporter_source()}
    assert spec.dependency_files == ("package.json",)


def test_reporter_ships_in_the_package() -> None:
    source = node_reporter_source().decode()
    assert "export default async function*" in source


@pytest.mark.parametrize(
    ("script", "argv", "env"),
    [
        ("c8 --100 --reporter=lcov node --test", ("node", *NODE_FLAGS, "--test"), {}),
        (
            "cross-env NODE_ENV=test TZ=UTC jest --ci",
            ("jest", "--ci", "--json", "--outputFile={report}"),
            {"NODE_ENV": "test", "TZ": "UTC"},
        ),
        (
            "NODE_ENV=test jest --coverage",
            ("jest", "--json", "--outputFile={report}"),
            {"NODE_ENV": "test"},
        ),
        (
            "nyc --reporter=text mocha --reporter spec --bail --check-leaks test/",
            (
                "mocha",
                "--check-leaks",
                "test/",
                "--reporter",
                f"./{MOCHA_REPORTER}",
                "--reporter-options",
                "output={report}",
            ),
            {},
        ),
        (
            "vitest --reporter=verbose",
            (
                "vitest",
                "run",
                "--reporter=default",
                "--reporter=json",
                "--outputFile.json={report}",
            ),
            {},
        ),
        (
            "npx vitest run src",
            (
                "vitest",
                "run",
                "src",
                "--reporter=default",
                "--reporter=json",
                "--outputFile.json={report}",
            ),
            {},
        ),
    ],
)
def test_wrappers_and_runners(
    tmp_path: Path, script: str, argv: tuple[str, ...], env: dict[str, str]
) -> None:
    spec = detect_node(project(tmp_path, script))
    assert spec is not None
    assert spec.test_command == argv
    assert dict(spec.env) == env


def test_npm_run_names_another_script(tmp_path: Path) -> None:
    spec = detect_node(project(tmp_path, "npm run test:unit", **{"test:unit": "mocha"}))
    assert spec is not None
    assert spec.report_format == "mocha"
    assert MOCHA_REPORTER in spec.support_files


@pytest.mark.parametrize(
    "script",
    [
        "npm run build && node --test",
        "node --test | tee out.txt",
        "node --test; echo done",
        "jest $JEST_ARGS",
        "mocha `cat args`",
        "jest --watch",
        "mocha -w",
        "vitest",  # watch mode when a terminal is attached: `vitest run` is what we run
        "vitest watch",
        "node test/run.js",  # a script of its own: not a runner we know
        "nyc --reporter lcov mocha",  # is "lcov" a value or the command? not guessed
        "PATH=/tmp/evil:$PATH jest",
        "PATH=/tmp/evil jest",
        "LD_PRELOAD=/tmp/x.so jest",
        "ava",
        "tap test/*.js",
        "npm run loop",
        "node --test 'unterminated",
    ],
)
def test_scripts_not_understood_fall_back_to_npm_test(tmp_path: Path, script: str) -> None:
    spec = detect_node(project(tmp_path, script, loop="npm run loop"))
    assert spec is not None
    if script == "vitest":
        assert spec.report_format == "vitest"  # plain `vitest` runs once as `vitest run`
        return
    assert spec.test_command == NPM_TEST
    assert spec.report_format is None
    assert spec.support_files == {}


def test_unquoted_globs_expand_like_sh_quoted_ones_do_not(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    for name in ("b.test.js", "a.test.js", "helper.js"):
        (tmp_path / "test" / name).write_text("")
    spec = detect_node(project(tmp_path, "node --test test/*.test.js test/none-*.js"))
    assert spec is not None
    assert spec.test_command[-3:] == ("test/a.test.js", "test/b.test.js", "test/none-*.js")
    spec = detect_node(project(tmp_path, "node --test 'test/**/*.test.js'"))
    assert spec is not None
    assert spec.test_command[-1] == "test/**/*.test.js"


def test_no_test_script_or_no_package_json(tmp_path: Path) -> None:
    assert detect_node(tmp_path) is None
    assert detect_node(project(tmp_path, None, build="tsc")) is None
    (tmp_path / "package.json").write_text("{not json")
    assert detect_node(tmp_path) is None


def test_lockfile_is_a_dependency_file(tmp_path: Path) -> None:
    project(tmp_path, "jest")
    (tmp_path / "package-lock.json").write_text("{}")
    spec = detect_node(tmp_path)
    assert spec is not None
    assert spec.dependency_files == ("package.json", "package-lock.json")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_real_node_test_run_gives_one_id_per_test(tmp_path: Path) -> None:
    """The issue's case: 21 tests whose JUnit classnames were all "test" collapsed into 16 ids.
    Same names in different files and suites stay apart."""
    (tmp_path / "test").mkdir()
    body = (
        "const { describe, it, test } = require('node:test');\n"
        "for (const s of ['one', 'two', 'three']) {\n"
        "  describe(s, () => { for (const t of ['a', 'b', 'c']) it(t, () => {}); });\n"
        "}\n"
        "test('a', () => {});\n"
        "test('fails', () => { throw new Error('no'); });\n"
    )
    (tmp_path / "test" / "x.test.js").write_text(body)
    (tmp_path / "test" / "y.test.js").write_text(body)
    spec = detect_node(project(tmp_path, "node --test"))
    assert spec is not None
    for name, data in spec.support_files.items():
        (tmp_path / name).write_bytes(data)
    argv = [a.replace("{report}", "report.jsonl") for a in spec.test_command]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, env=dict(os.environ))
    assert done.returncode == 1
    assert spec.report_format is not None
    out = PARSERS[spec.report_format]((tmp_path / "report.jsonl").read_bytes(), tmp_path)
    assert len(out) == 22
    assert out["test/x.test.js::two > b"] == "passed"
    assert out["test/y.test.js::a"] == "passed"
    assert out["test/y.test.js::fails"] == "failed"
