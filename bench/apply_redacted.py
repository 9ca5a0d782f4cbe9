"""Apply-stage CPU on diffs whose context lines carry ``[REDACTED:...]`` placeholders.

Issue 14 item 6: 3000 hunks with a placeholder against a 20k-line file cost minutes of host CPU
(every hunk re-read the file and scanned it line by line). The apply stage must stay linear in
the size of the diff plus the size of the files it touches. Three shapes of diff are timed on one
``apply_diff`` call each:

- ``anchored``: each hunk has an exact context line and a redacted line that fits nowhere
  (the old code scanned the whole file per hunk);
- ``prefix``: each hunk's only old line is ``<text>[REDACTED:...]`` matching no line;
- ``bare``: hunks of two bare placeholders against a file where no two non-empty lines are
  adjacent (no index helps: bounded by the work budget instead).

    python bench/apply_redacted.py [--hunks 3000] [--lines 20000] [--shape anchored]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from debugtrace.finalize.patching import apply_diff

SHAPES = ("anchored", "prefix", "bare")


def make_checkout(path: Path, lines: int, shape: str) -> None:
    path.mkdir()
    if shape == "bare":
        text = "".join(f"line {i}\n\n" for i in range(lines // 2))
    else:
        text = "".join(f"line {i} = {i * 7}\n" for i in range(lines))
    (path / "big.py").write_text(text)
    git = ["git", "-C", str(path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run(
        [*git, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "i"],
        check=True,
    )


def make_diff(hunks: int, lines: int, shape: str) -> str:
    out = ["--- a/big.py\n+++ b/big.py\n"]
    for h in range(hunks):
        at = 1 + (h * 5) % (lines - 10)
        if shape == "anchored":
            out.append(
                f"@@ -{at},2 +{at},2 @@\n line {at - 1} = {(at - 1) * 7}\n"
                f"-nope {h} = [REDACTED:generic-secret]\n+x\n"
            )
        elif shape == "prefix":
            out.append(f"@@ -{at},1 +{at},1 @@\n-nope {h} = [REDACTED:generic-secret]\n+x\n")
        else:
            out.append(f"@@ -{at},2 +{at},1 @@\n-[REDACTED:a]\n-[REDACTED:b]\n+x\n")
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hunks", type=int, default=3000)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--shape", choices=(*SHAPES, "all"), default="all")
    args = ap.parse_args()
    for shape in SHAPES if args.shape == "all" else (args.shape,):
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "r"
            make_checkout(tree, args.lines, shape)
            diff = make_diff(args.hunks, args.lines, shape)
            start, cpu = time.perf_counter(), time.process_time()
            out = apply_diff(tree, "big.py", diff)
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"{shape:9} {args.hunks} hunks x {args.lines} lines: {wall:7.2f}s wall, "
                f"{used:7.2f}s CPU in-process -> {out.status}",
                file=sys.stdout,
                flush=True,
            )


if __name__ == "__main__":
    main()
