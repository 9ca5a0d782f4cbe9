"""``debugtrace export``: stored traces out as training data, analytics or telemetry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debugtrace.errors import ExportError, UsageError

__all__ = ["add_arguments", "cmd_export"]


def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The options of ``debugtrace export``."""
    from debugtrace.export import FORMATS

    sp.add_argument(
        "--format",
        choices=list(FORMATS),
        default=None,
        help="jsonl: chat rows {messages, tools, metadata} (default; parquet with --layout hf); "
        "parquet: one row per trace (extra `parquet`); dpo: preference pairs {prompt, chosen, "
        "rejected}; otel: OTLP/JSON GenAI spans, one request per line; atif: one Agent "
        "Trajectory Interchange Format document per line",
    )
    sp.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    sp.add_argument(
        "--min-score",
        type=int,
        metavar="N",
        help="only traces scored N or more (the --grader's score, else every grader's lowest)",
    )
    sp.add_argument("--validated-only", action="store_true", help="only traces whose fix validated")
    sp.add_argument("--developer", metavar="ID", help="only this developer's traces")
    sp.add_argument("--since", metavar="DATE", help="only traces created at or after (ISO 8601)")
    sp.add_argument("--grader", metavar="NAME", help="only traces this grader graded; its score")
    sp.add_argument(
        "--include-untested",
        action="store_true",
        help="with --min-score: also traces that could not be tested, on their score",
    )
    sp.add_argument("--repo", metavar="TEXT", help="only repositories whose URL or path has TEXT")
    sp.add_argument(
        "--source",
        metavar="NAME",
        help="only traces recorded or imported by NAME: pytest, shell, cli, claude-code, codex, "
        "gemini-cli, swe-agent, openhands, mini-swe-agent, atif...",
    )
    sp.add_argument("--model", metavar="TEXT", help="only traces of an agent model containing TEXT")
    sp.add_argument("--limit", type=int, metavar="N", help="at most N traces (newest first)")
    sp.add_argument(
        "--dedup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the newest of traces with the same bug and the same net change (default: on "
        "for jsonl and parquet)",
    )
    sp.add_argument(
        "--layout",
        choices=["file", "hf"],
        default="file",
        help="hf: --output is a Hugging Face dataset folder (train and test files, a dataset "
        "card); parquet (the default with it)",
    )
    sp.add_argument(
        "--split-by",
        choices=["repo", "source"],
        default="repo",
        help="--layout hf: what never spans both splits (default repo)",
    )
    sp.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="--layout hf: the share of repositories (or sources) in test (default 0.1)",
    )
    sp.add_argument(
        "--metadata",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="jsonl: add each row's metadata (--no-metadata: the strict OpenAI upload shape)",
    )
    sp.add_argument(
        "--tokens",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="jsonl, parquet: count each row's tokens in o200k_base when tiktoken is installed "
        "(extra `tokens`; --no-tokens: faster, ~90 MB less memory)",
    )
    sp.add_argument(
        "--max-output",
        type=int,
        default=8000,
        metavar="BYTES",
        help="command outputs keep their head and tail within this (default 8000)",
    )


def cmd_export(args: argparse.Namespace, since: Any, collector: Callable[..., Any]) -> int:
    """Run ``debugtrace export`` with the parsed ``args`` (``since`` parsed already); the
    collector comes from ``collector(args)``."""
    from debugtrace.export import get_format

    hf = args.layout == "hf"
    try:
        fmt = get_format(args.format or ("parquet" if hf else "jsonl"))
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    if hf and args.output is None:
        raise UsageError("--layout hf writes a dataset folder: give it with --output DIR")
    if args.output is None and fmt.binary and sys.stdout.isatty():
        raise UsageError(f"--format {fmt.name} is binary: write it to a file with --output FILE")
    if args.output is not None and not Path(args.output).absolute().parent.is_dir():
        raise UsageError(f"--output {args.output}: no such directory")
    if hf:
        from debugtrace.export.hf import check_target

        try:
            check_target(fmt.name, args.output)
        except ExportError as exc:
            raise UsageError(str(exc)) from None
    if args.max_output < 1:
        raise UsageError(f"--max-output {args.max_output}: must be at least 1 byte")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: must be at least 1")
    if not 0 <= args.test_fraction <= 1:
        raise UsageError(f"--test-fraction {args.test_fraction}: must be between 0 and 1")
    if args.include_untested and args.min_score is None:
        raise UsageError("--include-untested only changes --min-score: give --min-score N")
    # dpo pairs come from traces of one bug: dedup would leave out the very attempts it pairs
    dedup = args.dedup if args.dedup is not None else fmt.name in ("jsonl", "parquet")
    filters: dict[str, Any] = {
        "min_score": args.min_score,
        "validated_only": args.validated_only,
        "developer_id": args.developer,
        "since": since,
        "grader": args.grader,
        "include_untested": args.include_untested,
    }
    duplicates: list[str] = []
    with collector(args) as c:
        total = None
        # a total only when storage can count what passes (not the trace-level filters)
        if sys.stderr.isatty() and not (args.repo or args.source or args.model or dedup):
            total = c.count_traces(c.export_query(**filters))
            if args.limit is not None:
                total = min(total, args.limit)
        from debugtrace.cli.render import ExportProgress

        with ExportProgress(total) as progress:
            try:
                n = c.export(
                    fmt.name,
                    args.output,  # None: stdout
                    metadata=args.metadata,
                    max_output_bytes=args.max_output,
                    tokens=args.tokens,
                    progress=progress,
                    repo=args.repo,
                    source=args.source,
                    model=args.model,
                    dedup=dedup,
                    limit=args.limit,
                    layout=args.layout,
                    split_by=args.split_by,
                    test_fraction=args.test_fraction,
                    duplicates=duplicates,
                    **filters,
                )
            except ExportError as exc:
                raise UsageError(str(exc)) from None
    where = f" to {args.output}" if args.output is not None else ""
    skipped = f" ({len(duplicates)} duplicate{'' if len(duplicates) == 1 else 's'} left out)"
    print(
        f"exported {n} trace{'' if n == 1 else 's'}{where}{skipped if duplicates else ''}",
        file=sys.stderr,
    )
    if fmt.name == "dpo" and args.output is not None:
        with open(args.output, "rb") as f:
            pairs = sum(1 for _ in f)
        print(f"{pairs} preference pair{'' if pairs == 1 else 's'}", file=sys.stderr)
        if not pairs:
            print(
                "a pair needs two traces of one bug (same repository, bug and commit): one "
                "validated, one tested and not validated",
                file=sys.stderr,
            )
    return 0
