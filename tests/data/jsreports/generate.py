"""Regenerate the reports beside this file from real runs (see README.md).

Usage: copy ``project/`` somewhere, ``npm install --ignore-scripts`` there, then
``python generate.py <that copy> [node binary]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from debugtrace.sandbox.node_projects import runner_command

HERE = Path(__file__).parent
RUNS = [
    ("test", "node-test.jsonl"),
    ("test:dup", "node-test-duplicate.jsonl"),
    ("test:jest", "jest.json"),
    ("test:mocha", "mocha.json"),
    ("test:vitest", "vitest.json"),
]


def main(root: Path, node: str = "node") -> None:
    scripts = json.loads((root / "package.json").read_text())["scripts"]
    for script, out in RUNS:
        cmd = runner_command(scripts, root, script)
        assert cmd is not None, script
        for rel, data in cmd.support_files.items():
            (root / rel).write_bytes(data)
        report = f".debugtrace-report-{out}"
        argv = [a.replace("{report}", report) for a in cmd.argv]
        argv[0] = node if argv[0] == "node" else argv[0]
        path = f"{root}/node_modules/.bin:{os.environ['PATH']}"
        env = dict(os.environ, PATH=path, **cmd.env)
        done = subprocess.run(argv, cwd=root, env=env, check=False)
        print(script, "exit", done.returncode, argv)
        (HERE / out).write_bytes((root / report).read_bytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), *sys.argv[2:])
