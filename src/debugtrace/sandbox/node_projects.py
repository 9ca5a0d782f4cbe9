"""Node project detection: which test runner ``scripts.test`` starts, and how to run it for
per-test results.

``package.json``'s ``test`` script is shell text written by the repository: it never reaches a
shell. It is split into words; a script that is one plain runner invocation is understood and
rebuilt as an argv that runs that runner directly with a machine-readable report written to
``{report}`` (finalize replaces the placeholder, as it does ``{junit}``):

===============  ===================================================================  ==========
runner           argv (the script's own arguments kept, minus reporter/watch options)  format
===============  ===================================================================  ==========
``node --test``  ``node --test-reporter=./.debugtrace-node-reporter.mjs``              node-test
                 ``--test-reporter-destination={report} --test-reporter=spec``
                 ``--test-reporter-destination=stdout --test ...``
``jest``         ``jest ... --json --outputFile={report}``                             jest
``mocha``        ``mocha ... --reporter ./.debugtrace-mocha-reporter.cjs``             mocha
                 ``--reporter-options output={report}`` (``--bail`` dropped)
``vitest``       ``vitest run ... --reporter=default --reporter=json``                 vitest
                 ``--outputFile.json={report}``
===============  ===================================================================  ==========

Understood around the runner: ``VAR=value`` and ``cross-env VAR=value`` prefixes (into
``ProjectSpec.env``), the coverage wrappers ``c8`` and ``nyc`` with ``--opt=value`` options
(dropped: coverage is not what is being measured), ``npx``, and ``npm run <script>`` naming
another script. Anything else (``&&``, pipes, ``$VAR``, a build step, an unknown tool) is not
simple: the project then runs ``npm test --silent`` and passes or fails as a whole
(``report_format=None``). Unquoted globs (``test/*.test.js``) are expanded here as ``sh`` would
(no ``**`` recursion, no match keeps the word), since npm runs scripts through ``sh``.

The reporters debugtrace adds are ``ProjectSpec.support_files``, written into the worktree by
finalize before the runs.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from debugtrace.sandbox import ProjectSpec

__all__ = [
    "MOCHA_REPORTER",
    "NODE_REPORTER",
    "NPM_TEST",
    "REPORT",
    "RunnerCommand",
    "detect_node",
    "runner_command",
]

NODE_REPORTER = ".debugtrace-node-reporter.mjs"
MOCHA_REPORTER = ".debugtrace-mocha-reporter.cjs"
REPORT = "{report}"
NPM_TEST = ("npm", "test", "--silent")
MAX_PACKAGE_JSON_BYTES = 1024**2
_MAX_SCRIPT_CHARS = 4096
_MAX_DEPTH = 3
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FORBIDDEN_ENV = ("PATH", "HOME", "NODE_PATH")
_GLOB_CHARS = frozenset("*?[")

# Mocha's own spec output to stdout (when the project's mocha can be loaded) and mocha's json
# shape, plus each test's titlePath, to the file named by --reporter-options output=PATH.
MOCHA_REPORTER_SOURCE = b"""\
'use strict';
// debugtrace's mocha reporter: mocha's json report plus each test's titlePath (suite names).
const fs = require('fs');
let Spec = null;
try { Spec = require('mocha').reporters.Spec; } catch (e) { Spec = null; }

function titlePath(test) {
  if (typeof test.titlePath === 'function') return test.titlePath();
  const names = [];
  for (let t = test; t; t = t.parent) if (!t.root && t.title !== undefined) names.unshift(t.title);
  return names;
}

function DebugtraceReporter(runner, options) {
  if (Spec) Spec.call(this, runner, options);
  const opts = (options && (options.reporterOption || options.reporterOptions)) || {};
  const output = opts.output || '.debugtrace-report.json';
  const results = new Map();
  const record = (kind) => (test) => {
    results.set(test, {
      kind,
      type: test.type === 'hook' ? 'hook' : 'test',
      title: String(test.title),
      fullTitle: typeof test.fullTitle === 'function' ? test.fullTitle() : String(test.title),
      titlePath: titlePath(test).map(String),
      file: test.file || (test.parent && test.parent.file) || null,
    });
  };
  runner.on('pass', record('passes'));
  runner.on('fail', record('failures'));
  runner.on('pending', record('pending'));
  runner.once('end', () => {
    const doc = { passes: [], failures: [], pending: [] };
    for (const entry of results.values()) doc[entry.kind].push(entry);
    fs.writeFileSync(output, JSON.stringify(doc, null, 1));
  });
}
if (Spec) {
  DebugtraceReporter.prototype = Object.create(Spec.prototype);
  DebugtraceReporter.prototype.constructor = DebugtraceReporter;
}
module.exports = DebugtraceReporter;
"""


def node_reporter_source() -> bytes:
    """The ``node --test`` reporter module (``node_reporter.mjs``, shipped in the package)."""
    return resources.files("debugtrace.sandbox").joinpath("node_reporter.mjs").read_bytes()


@dataclass(frozen=True)
class RunnerCommand:
    """A test script understood as one runner invocation."""

    argv: tuple[str, ...]
    report_format: str
    env: Mapping[str, str] = field(default_factory=dict)
    support_files: Mapping[str, bytes] = field(default_factory=dict)


def _words(script: str) -> list[str] | None:
    """The script's words, or None when it is more than one simple command."""
    if len(script) > _MAX_SCRIPT_CHARS or any(c in script for c in "$`\n\r\\"):
        return None
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes
        return None
    if not words or any(w and all(c in "();<>|&" for c in w) for w in words):
        return None
    return words


MAX_GLOB_MATCHES = 2000
"""Most files one script's globs expand to (a glob through a committed symlink to ``/`` would
otherwise list the host)."""


def _expand(words: list[str], root: Path, quoted: bool) -> list[str]:
    """Expand unquoted glob words against ``root`` as ``sh`` does (sorted, ``**`` = ``*``),
    keeping only matches that are inside the checkout once links are resolved, at most
    :data:`MAX_GLOB_MATCHES` in all: this runs on the host."""
    if quoted:
        return words
    base = root.resolve()
    out: list[str] = []
    left = MAX_GLOB_MATCHES
    for w in words:
        if w.startswith("-") or not _GLOB_CHARS & set(w) or w.startswith("/") or ".." in w:
            out.append(w)
            continue
        matches = []
        for examined, match in enumerate(glob.iglob(w, root_dir=root, recursive=False)):
            if left <= 0 or examined >= 10 * MAX_GLOB_MATCHES:
                break
            try:
                inside = (root / match).resolve().is_relative_to(base)
            except (OSError, RuntimeError):
                inside = False
            if inside:
                matches.append(match)
                left -= 1
        out.extend(sorted(matches) or [w])
    return out


def _drop(args: Sequence[str], flags: Sequence[str], with_value: Sequence[str]) -> list[str]:
    """``args`` without ``flags`` and without ``with_value`` options and their values."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if a in flags:
            continue
        if name in with_value:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def _node_test(args: list[str]) -> RunnerCommand | None:
    if "--test" not in args or any(a.startswith("--watch") for a in args):
        return None
    rest = _drop(args, (), ("--test-reporter", "--test-reporter-destination"))
    reporters = (
        f"--test-reporter=./{NODE_REPORTER}",
        f"--test-reporter-destination={REPORT}",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
    )
    return RunnerCommand(
        ("node", *reporters, *rest),
        "node-test",
        support_files={NODE_REPORTER: node_reporter_source()},
    )


def _jest(args: list[str]) -> RunnerCommand | None:
    if any(a.split("=", 1)[0] in ("--watch", "--watchAll") for a in args):
        return None
    rest = _drop(args, ("--json", "--coverage"), ("--outputFile", "--coverage"))
    return RunnerCommand(("jest", *rest, "--json", f"--outputFile={REPORT}"), "jest")


def _mocha(args: list[str]) -> RunnerCommand | None:
    if any(a in ("-w", "--watch") for a in args):
        return None
    rest = _drop(
        args,
        ("--bail", "-b"),
        ("--reporter", "-R", "--reporter-option", "--reporter-options", "-O"),
    )
    return RunnerCommand(
        (
            "mocha",
            *rest,
            "--reporter",
            f"./{MOCHA_REPORTER}",
            "--reporter-options",
            f"output={REPORT}",
        ),
        "mocha",
        support_files={MOCHA_REPORTER: MOCHA_REPORTER_SOURCE},
    )


def _vitest(args: list[str]) -> RunnerCommand | None:
    if args and args[0] in ("watch", "dev", "bench"):
        return None
    if args and args[0] == "run":
        args = args[1:]
    if any(a.split("=", 1)[0] in ("--watch", "-w", "--ui") for a in args):
        return None
    rest = _drop(args, ("--coverage",), ("--reporter", "--outputFile", "--coverage"))
    rest = [a for a in rest if not a.startswith(("--outputFile.", "--coverage."))]
    return RunnerCommand(
        (
            "vitest",
            "run",
            *rest,
            "--reporter=default",
            "--reporter=json",
            f"--outputFile.json={REPORT}",
        ),
        "vitest",
    )


_RUNNERS = {"node": _node_test, "jest": _jest, "mocha": _mocha, "vitest": _vitest}


def runner_command(
    scripts: Mapping[str, object], root: Path, name: str = "test", depth: int = 0
) -> RunnerCommand | None:
    """How to run ``scripts[name]`` for per-test results, or None when it is not one plain
    runner invocation (see the module docstring)."""
    script = scripts.get(name)
    if not isinstance(script, str) or depth > _MAX_DEPTH:
        return None
    words = _words(script)
    if words is None:
        return None
    env: dict[str, str] = {}
    i = 0
    while i < len(words):
        w = words[i]
        key, eq, value = w.partition("=")
        if eq and _ENV_NAME.match(key):
            if key in _FORBIDDEN_ENV or key.startswith(("DEBUGTRACE_", "LD_")):
                return None
            env[key] = value
        elif w in ("cross-env", "npx"):
            pass
        elif w in ("c8", "nyc"):
            # Their options are skipped; "--reporter lcov" leaves "lcov" as the runner, which
            # no runner is named, so such a script is not understood (never guessed).
            while i + 1 < len(words) and words[i + 1].startswith("-"):
                i += 1
        else:
            break
        i += 1
    rest = words[i:]
    if not rest:
        return None
    if rest[0] == "npm" and len(rest) == 3 and rest[1] in ("run", "run-script") and not env:
        return runner_command(scripts, root, rest[2], depth + 1)
    build = _RUNNERS.get(rest[0])
    if build is None:
        return None
    args = _expand(rest[1:], root, quoted=any(q in script for q in "'\""))
    command = build(args)
    if command is None:
        return None
    return RunnerCommand(command.argv, command.report_format, env, command.support_files)


def _read_package_json(root: Path) -> dict[str, object] | None:
    from debugtrace.sandbox.files import read_small as _read_small

    text = _read_small(root, "package.json")
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def detect_node(path: Path) -> ProjectSpec | None:
    """The Node project in ``path`` (a ``package.json`` with a ``test`` script), or None.

    The spec runs the test runner directly with a report (see the module docstring), or
    ``npm test --silent`` as one pass/fail result when the script is not understood."""
    data = _read_package_json(path)
    if data is None:
        return None
    scripts = data.get("scripts")
    if not isinstance(scripts, dict) or "test" not in scripts:
        return None
    deps = tuple(n for n in ("package.json", "package-lock.json") if (path / n).is_file())
    command = runner_command(scripts, path)
    if command is None:
        return ProjectSpec(kind="node", test_command=NPM_TEST, dependency_files=deps)
    return ProjectSpec(
        kind="node",
        test_command=command.argv,
        report_format=command.report_format,
        dependency_files=deps,
        env=dict(command.env),
        support_files=dict(command.support_files),
    )
