"""Export stored traces: chat fine-tuning rows (JSON Lines), Parquet, OpenTelemetry spans, ATIF.

``export(traces, "jsonl", out)`` writes each trace as it arrives and keeps nothing, so with
:meth:`debugtrace.storage.Storage.iter_traces` as the source memory stays flat however many traces
there are. Formats are looked up in :data:`FORMATS`; each names the module that writes it, which is
imported only when used (this module is cheap to import: ``debugtrace --help`` reads the names).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from debugtrace.errors import ExportError

if TYPE_CHECKING:
    from debugtrace.model import Trace

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "ExportOptions",
    "JsonLines",
    "Writer",
    "export",
    "get_format",
    "open_output",
]


@dataclass(frozen=True)
class ExportOptions:
    """How traces are rendered (the same for every format that uses the option)."""

    grader: str | None = None
    """Whose grade is the row's ``score`` (default: the lowest of every grader's latest)."""
    metadata: bool = True
    """jsonl: add the ``metadata`` object to each row (OpenAI's upload wants rows without it)."""
    max_output_bytes: int = 8000
    """Command outputs longer than this keep their head and tail (tool results, span attributes)."""
    tokens: bool = True
    """jsonl, parquet: count each row's tokens when tiktoken is installed (its encoding takes
    ~90 MB and ~40% of the export's time; ``--no-tokens`` skips it)."""


class Writer(Protocol):
    """Writes traces in one format to a binary stream."""

    def write(self, trace: Trace) -> None:
        """Write one trace."""

    def close(self) -> None:
        """Finish the document (e.g. Parquet's footer); the stream itself stays open."""


class JsonLines:
    """A :class:`Writer` of one JSON document per trace per line: ``convert(trace, options)``
    makes the document, ``write_row`` writes one made elsewhere (the Hugging Face layout counts
    a row's tokens before writing it). ``dump`` turns a document into bytes."""

    def __init__(
        self,
        out: BinaryIO,
        options: ExportOptions,
        convert: Callable[[Trace, ExportOptions], dict[str, Any]],
        dump: Callable[[Any], bytes],
    ) -> None:
        self.out = out
        self.options = options
        self.convert = convert
        self.dump = dump

    def write(self, trace: Trace) -> None:
        """Write the trace's document."""
        self.write_row(self.convert(trace, self.options))

    def write_row(self, row: dict[str, Any]) -> None:
        """Write one document as a line."""
        self.out.write(self.dump(row) + b"\n")

    def close(self) -> None:
        """Nothing to finish: every line is complete."""


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its name, the module with ``writer(out, options)``, what it needs."""

    name: str
    module: str
    description: str
    requires: tuple[str, ...] = ()
    """Importable modules the format needs beyond debugtrace's own dependencies."""
    extra: str | None = None
    """The debugtrace extra that installs them."""
    binary: bool = False
    """The output is not text (refused on a terminal)."""

    def missing(self) -> list[str]:
        """The required modules that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def check(self) -> None:
        """Raise ``ExportError`` saying what to install when a dependency is missing."""
        missing = self.missing()
        if missing:
            hint = f": pip install 'debugtrace-collector[{self.extra}]'" if self.extra else ""
            raise ExportError(f"--format {self.name} needs {', '.join(missing)}{hint}")

    def writer(self, out: BinaryIO, options: ExportOptions) -> Writer:
        """A writer of this format to ``out``; raises ``ExportError`` if a dependency is missing."""
        self.check()
        make: Callable[[BinaryIO, ExportOptions], Writer] = importlib.import_module(
            f"{__name__}.{self.module}"
        ).writer
        return make(out, options)


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "jsonl",
            "chat",
            "one chat fine-tuning row per line: {messages, tools, metadata}",
        ),
        ExportFormat(
            "parquet",
            "parquet",
            "one row per trace for analytics (counts, validation, scores, messages JSON)",
            requires=("pyarrow",),
            extra="parquet",
            binary=True,
        ),
        ExportFormat(
            "dpo",
            "preference",
            "preference pairs {prompt, chosen, rejected, metadata}: a validated attempt against a "
            "failed one on the same bug",
        ),
        ExportFormat(
            "otel",
            "otel",
            "OpenTelemetry GenAI spans: one OTLP/JSON ExportTraceServiceRequest per line",
        ),
        ExportFormat(
            "atif",
            "atif",
            "Harbor's Agent Trajectory Interchange Format: one ATIF-v1.7 document per line",
        ),
    )
}
"""Every export format by name."""


def get_format(name: str) -> ExportFormat:
    """The format called ``name``, with its dependencies installed; raises ``ExportError``."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ExportError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}")
    fmt.check()
    return fmt


def export(
    traces: Iterable[Trace],
    format: str,
    out: IO[Any],
    *,
    options: ExportOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``traces`` to ``out`` in ``format``, one at a time; returns how many were written.

    ``out`` is a binary stream, or a text stream for the text formats (jsonl, otel, atif).
    ``progress`` is called with the running count after each trace. ``out`` is flushed, not
    closed.
    """
    fmt = get_format(format)
    sink = _binary(out, fmt)
    writer = fmt.writer(sink, options or ExportOptions())
    n = 0
    try:
        for trace in traces:
            writer.write(trace)
            n += 1
            if progress is not None:
                progress(n)
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            writer.close()
        raise
    writer.close()
    sink.flush()
    return n


@contextmanager
def open_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only when the block ends without an exception (a
    failed or interrupted export leaves no half-written file behind)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _binary(out: IO[Any], fmt: ExportFormat) -> BinaryIO:
    """``out`` as a binary stream: a text stream's buffer, or UTF-8 written through it."""
    if not isinstance(out, io.TextIOBase):
        return cast(BinaryIO, out)
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        return cast(BinaryIO, buffer)
    if fmt.binary:
        raise ExportError(f"--format {fmt.name} is binary: give a binary stream or a file")
    return cast(BinaryIO, _TextSink(out))


class _TextSink(io.RawIOBase):
    """Bytes written here go to a text stream (e.g. ``io.StringIO``) as UTF-8 text."""

    def __init__(self, text: IO[str]) -> None:
        super().__init__()
        self.text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.text.write(bytes(data).decode("utf-8"))
        return len(data)

    def flush(self) -> None:
        self.text.flush()
