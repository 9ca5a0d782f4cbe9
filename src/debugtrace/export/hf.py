"""A dataset folder in the Hugging Face layout: train and test splits and a dataset card.

``export_hf(traces, "parquet", "out/")`` writes::

    out/README.md                            the dataset card: YAML configs, counts, how made
    out/data/train-00000-of-00001.parquet
    out/data/test-00000-of-00001.parquet

``datasets.load_dataset("out/")`` (or the folder pushed to the Hub) reads it as two splits. The
split is by **group** (the repository by default, or the source), never by row: every trace of
one repository lands in the same split, so a test score is never a memory of the training set.
A group's split is fixed by a hash of its name (test when it falls under ``test_fraction``), so
exporting again with more traces never moves a repository from one split to the other; with
few repositories a split can be empty, and the card says so.

The folder is written next to ``out`` and moved into place when complete (an existing ``out``
must be empty): an interrupted export leaves no half-written dataset.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from debugtrace.errors import ExportError
from debugtrace.export import ExportOptions, get_format
from debugtrace.export.chat import trace_source
from debugtrace.export.select import repo_key
from debugtrace.model import Trace

__all__ = ["SPLITS", "SplitStats", "check_target", "export_hf", "split_of"]

SPLITS = ("train", "test")
SplitBy = Literal["repo", "source"]


def split_of(group: str, test_fraction: float) -> str:
    """``test`` when the group's hash falls under ``test_fraction``, else ``train``."""
    bucket = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < test_fraction else "train"


@dataclass
class SplitStats:
    """What the card says of one split."""

    rows: int = 0
    groups: set[str] = field(default_factory=set)
    sources: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    scores: Counter[str] = field(default_factory=Counter)
    tokens: int = 0

    def add(self, row: dict[str, Any], group: str) -> None:
        """Count one Parquet row (:func:`debugtrace.export.parquet.row`) of the group."""
        self.rows += 1
        self.groups.add(group)
        self.sources[row["source"] or "unknown"] += 1
        self.models[row["model"] or "unknown"] += 1
        if row["fix_validated"] is not None:
            self.verdicts["validated" if row["fix_validated"] else "not validated"] += 1
        else:
            self.verdicts["could not test" if row["could_not_test"] else "no verdict"] += 1
        self.scores[str(row["score"]) if row["score"] is not None else "ungraded"] += 1
        self.tokens += row["n_tokens"] or 0


def export_hf(
    traces: Iterable[Trace],
    format: str,
    directory: str | os.PathLike[str],
    *,
    options: ExportOptions | None = None,
    split_by: SplitBy = "repo",
    test_fraction: float = 0.1,
    progress: Callable[[int], None] | None = None,
    command: str | None = None,
) -> dict[str, SplitStats]:
    """Write ``traces`` as a Hugging Face dataset folder (see the module); returns each split's
    counts. ``format`` is ``parquet`` (the one schema both splits share: JSON Lines leave
    ``datasets`` to guess each split's types, and a field null in every train row but true in
    a test row does not load); ``command`` is how the export was asked
    for, for the card. Raises ``ExportError`` for another format, a non-empty ``directory`` or a
    fraction outside 0-1."""
    from debugtrace.export import tokens

    check_target(format, directory)
    if not 0 <= test_fraction <= 1:
        raise ExportError(f"--test-fraction {test_fraction}: must be between 0 and 1")
    target = Path(directory)
    fmt = get_format(format)
    options = options or ExportOptions()
    module = importlib.import_module(f"debugtrace.export.{fmt.module}")
    counting = options.tokens and tokens.available()
    stats = {name: SplitStats() for name in SPLITS}
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        (work / "data").mkdir()
        files = {name: work / "data" / f"{name}-00000-of-00001.parquet" for name in SPLITS}
        streams = {name: files[name].open("wb") for name in SPLITS}
        writers: dict[str, Any] = {}
        n = 0
        try:
            for trace in traces:
                group = (
                    repo_key(trace.repo_url)
                    if split_by == "repo"
                    else (trace_source(trace) or "unknown")
                )
                split = split_of(group, test_fraction)
                if split not in writers:
                    writers[split] = module.writer(streams[split], options)
                row = module.row(trace, options)
                writers[split].write_row(row)
                stats[split].add(row, group)
                n += 1
                if progress is not None:
                    progress(n)
            for w in writers.values():
                w.close()
        finally:
            for f in streams.values():
                f.close()
        for name in SPLITS:
            if not stats[name].rows:
                files[name].unlink()
        card = dataset_card(
            stats, split_by, test_fraction, format, tokens.TOKENIZER if counting else None, command
        )
        (work / "README.md").write_text(card, encoding="utf-8")
        if target.exists():
            target.rmdir()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return stats


def check_target(format: str, directory: str | os.PathLike[str]) -> None:
    """Raise ``ExportError`` unless ``format`` is parquet and ``directory`` a new or empty folder
    (not a symbolic link): what :func:`export_hf` writes, checked before any trace is read."""
    if format != "parquet":
        raise ExportError(
            f"--layout hf writes parquet, not --format {format}: both splits need one schema, "
            "which JSON Lines do not carry"
        )
    target = Path(directory)
    if target.is_symlink():
        raise ExportError(f"--output {target}: a symbolic link; give the folder itself")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"--output {target}: must be a new or empty directory for --layout hf")


def _cell(value: object, limit: int = 80) -> str:
    """Text from traces as a Markdown table cell: no markup, pipes or line breaks survive."""
    text = " ".join(str(value).split())
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text[:limit]


def _top(counter: Counter[str], n: int = 5) -> str:
    if not counter:
        return "-"
    shown = ", ".join(f"{_cell(k)} ({v})" for k, v in counter.most_common(n))
    more = len(counter) - n
    return shown + (f", {more} more" if more > 0 else "")


def dataset_card(
    stats: dict[str, SplitStats],
    split_by: SplitBy,
    test_fraction: float,
    format: str,
    tokenizer: str | None,
    command: str | None,
) -> str:
    """The dataset card (``README.md``): the YAML the Hub and ``datasets`` read, then what the
    dataset holds, split by split, and how it was made."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        made_by = f"debugtrace {version('debugtrace-collector')}"
    except PackageNotFoundError:  # run from a source tree
        made_by = "debugtrace"
    total = sum(s.rows for s in stats.values())
    size = "n<1K" if total < 1000 else "1K<n<10K" if total < 10_000 else "10K<n<100K"
    files = [
        f"  - split: {name}\n    path: data/{name}-*.parquet" for name in SPLITS if stats[name].rows
    ]
    front = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *files,
        "task_categories:",
        "- text-generation",
        "tags:",
        "- debugging",
        "- tool-use",
        "- agent-traces",
        "- debugtrace",
        "size_categories:",
        f"- {size}",
        "---",
    ]
    rows: list[tuple[str, Callable[[SplitStats], str]]] = [
        ("Rows", lambda s: str(s.rows)),
        ("Repositories" if split_by == "repo" else "Sources", lambda s: str(len(s.groups))),
        ("Verdicts", lambda s: _top(s.verdicts)),
        ("Scores", lambda s: _top(s.scores, 6)),
        ("Sources", lambda s: _top(s.sources)),
        ("Models", lambda s: _top(s.models)),
    ]
    if tokenizer:
        rows.append(("Tokens", lambda s: f"{s.tokens:,}"))
    table = ["| | " + " | ".join(SPLITS) + " |", "|---|" + "---|" * len(SPLITS)]
    table += [f"| {label} | " + " | ".join(f(stats[n]) for n in SPLITS) + " |" for label, f in rows]
    empty = [name for name in SPLITS if not stats[name].rows]
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    body = [
        "",
        "# Debugging traces",
        "",
        "Debugging sessions recorded with [debugtrace](https://github.com/debugtrace/debugtrace): "
        "each row is one session as a chat conversation with tool calls (`messages`, `tools`), "
        "the developer's or agent's hypotheses as assistant text, the commands they ran and the "
        "edits they made as tool calls, and what the tests said of the fix.",
        "",
        "## Splits",
        "",
        *table,
        "",
        f"Split by {'repository' if split_by == 'repo' else 'source'}: every row of one "
        f"{'repository' if split_by == 'repo' else 'source'} is in the same split (a hash of its "
        f"name under {test_fraction:g} puts it in test), so no repository is in both.",
    ]
    if empty:
        body += ["", f"Empty split: {', '.join(empty)} (too few groups for the fraction)."]
    if tokenizer:
        body += [
            "",
            f"Tokens are counted with {tokenizer} as OpenAI counts a chat row (an estimate).",
        ]
    body += [
        "",
        "## Fields",
        "",
        "- `messages`: system, user (the repository, base commit and bug), then assistant turns "
        "(text and `tool_calls`) and `tool` results; the last turn is the assistant's. Paths are "
        "relative to the repository; diffs are unified diffs without git's header lines.",
        "- `weight` on an assistant message: 0 for a turn kept as context only (an edit later "
        "undone, the closing turn debugtrace added), as OpenAI's fine-tuning reads it; trainers "
        "that ignore it (TRL's SFT) need the mask made from it.",
        "- `tools`: the JSON Schemas of the tools the calls use, as JSON text (`json.loads` it "
        "for a chat template); a call's `arguments` are JSON text, as in OpenAI's format.",
        "- the verdict: `fix_validated` (the tests before and after the edits), "
        "`could_not_test` (why there is none), `fail_to_pass`; `score` (1-5) and the grades.",
        "",
        "## How it was made",
        "",
        f"Exported on {when} by {made_by}" + (f" with: {_cell(command, 300)}." if command else "."),
        "Command outputs keep their head and tail; secrets were redacted when each trace was "
        "stored. Check the licences of the repositories the traces come from before you "
        "publish this dataset.",
        "",
    ]
    return "\n".join(front + body)
