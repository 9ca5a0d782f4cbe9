"""A dataset folder made from hostile traces: their text reaches the dataset card only as
escaped table text (no Markdown, HTML, links or YAML of their choosing), and file names in the
folder are ours, whatever a repository URL, source or model says.

The host-path scrub is regular expressions over trace text: it must stay linear on text made
of its own building blocks.
"""

from __future__ import annotations

import time
from pathlib import Path

from debugtrace.export import ExportOptions
from debugtrace.export.hf import export_hf
from debugtrace.export.hygiene import Scrub
from debugtrace.testing import sample_trace
from debugtrace.textutil import strip_debugtrace_flags

HOSTILE = "x\n---\nconfigs: []\n---\n<script>alert(1)</script> | [a](javascript:1) ![i](http://e/)"


def test_trace_text_reaches_the_card_only_as_escaped_table_text(tmp_path: Path) -> None:
    traces = [
        sample_trace(
            repo_url="https://github.com/a/b",
            metadata={"source": HOSTILE, "model": HOSTILE + "/../../etc"},
        )
    ]
    out = tmp_path / "ds"
    export_hf(traces, "parquet", out, options=ExportOptions(), command=HOSTILE)
    card = (out / "README.md").read_text()
    front, body = card.split("\n---\n", 1)
    assert "configs: []" not in front and body.count("\n---\n") == 0
    for raw in ("<script>", "[a](javascript", "![i]", "| [a]"):
        assert raw not in body
    assert "\\<script\\>" in body and "\\[a\\](javascript" in body  # text, not markup
    # the folder holds our files only
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files in (
        ["README.md", "data/test-00000-of-00001.parquet"],
        ["README.md", "data/train-00000-of-00001.parquet"],
    )


def test_the_scrub_is_linear_on_its_own_building_blocks() -> None:
    scrub = Scrub(sample_trace(repo_url="/home/ana/repo"))
    for block in ("/home/ana/repo", "/bin/", "/a" * 3, "/home/", "/Users/ x", "/a@", "/a+"):
        small, big = block * 2_000, block * 8_000
        start = time.perf_counter()
        scrub.command(small)
        t_small = time.perf_counter() - start
        start = time.perf_counter()
        scrub.command(big)
        t_big = time.perf_counter() - start
        assert t_big < max(t_small, 0.002) * 12, block


def test_flag_stripping_never_runs_or_expands_the_command() -> None:
    # a regular expression over the text: nothing is split, quoted again, expanded or run
    line = "pytest --debugtrace $(rm -rf /) `id` *.py ~root; echo $HOME | tee log 2>&1"
    assert strip_debugtrace_flags(line) == line.replace(" --debugtrace", "")


def test_scrub_and_flag_stripping_stay_linear_at_the_size_limits() -> None:
    # an outside review's inputs: each took seconds to minutes (a match tried at every "/")
    scrub = Scrub(sample_trace(repo_url="/home/ana/repo"))
    for text in ("/a@" * 87_381, "/a+" * 87_381, "`" + "--debugtrace " * 20_000):
        start = time.perf_counter()
        scrub.text(text)
        scrub.command(text)
        strip_debugtrace_flags(text)
        assert time.perf_counter() - start < 2.0, text[:10]
