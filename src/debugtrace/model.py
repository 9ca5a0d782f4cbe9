"""The trace model (pydantic v2): a trace and its events, exactly in the seed's wire shape.

An event on the wire is ``{"type": ..., "timestamp": ..., "details": {...}}``; ``type`` picks
one of :class:`ReasoningEvent`, :class:`CommandEvent` and :class:`EditEvent`. Unknown keys inside
``details`` are kept and returned as sent; an unknown ``type`` is refused with the allowed ones.
Timestamps are timezone-aware and normalised to UTC (a naive timestamp is taken as UTC). Numbers are
finite and bounded (:data:`MAX_DURATION_S`, :data:`EXIT_CODES`), a ``repo_url`` that is a URL must
parse as one, and the JSON Schema (``Trace.model_json_schema()``) says what the parser accepts. Size
limits are ingest policy, checked by :mod:`debugtrace.ingest.limits` when untrusted input is parsed.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from debugtrace.results import TraceResult

__all__ = [
    "BASE_COMMIT_PATTERN",
    "CONFIDENCE_WORDS",
    "EXIT_CODES",
    "MAX_DURATION_S",
    "REASONING_TYPES",
    "CommandDetails",
    "CommandEvent",
    "EditDetails",
    "EditEvent",
    "Event",
    "HeldOut",
    "ReasoningDetails",
    "ReasoningEvent",
    "Trace",
    "TraceStatus",
    "repo_url_problem",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


# The tzinfo pydantic-core gives every parsed "...Z" timestamp (one shared object).
_PARSED_UTC = TypeAdapter(datetime).validate_python("2000-01-01T00:00:00Z").tzinfo


def _to_utc(value: datetime) -> datetime:
    # Naive timestamps are UTC by contract; aware ones are normalised so stored == returned.
    tz = value.tzinfo
    if tz is _PARSED_UTC or tz is UTC:
        return value  # the common case, decided without calling utcoffset() (ingest hot path)
    if tz is None:
        return value.replace(tzinfo=UTC)
    if not value.utcoffset():
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 has no UTC equivalent
        raise ValueError("timestamp is out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


MAX_DURATION_S = 366 * 24 * 3600
"""Longest ``duration_s`` accepted (366 days, in seconds): a longer one is a broken clock."""

EXIT_CODES = (-(2**31), 2**32 - 1)
"""The exit codes accepted (inclusive): any platform's (POSIX signals as negatives, Windows'
unsigned 32-bit codes)."""

# Whitespace as Python's str.isspace() (and str.strip()) sees it, spelt out: `\s` means three
# different sets to pydantic's Rust regex, Python's `re` and ECMAScript (JSON Schema validators), so
# a pattern shared by the parser and the published schema must not use it.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class _SchemaPattern:
    """Adds a ``pattern`` to a string's JSON Schema only (the validator checking the same rule has a
    clearer message than a failed pattern)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


def _no_nul(value: str) -> str:
    # Trace-level fields become database columns, and PostgreSQL text cannot hold NUL.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


ColumnText = Annotated[str, AfterValidator(_no_nul), _SchemaPattern(r"^[^\x00]*$")]

BASE_COMMIT_PATTERN = rf"^[^-\x00{_SPACE}][^\x00{_SPACE}]*$"
"""A commit or ref: no whitespace or NUL, and no leading ``-`` (git would read an option); so never
empty. The published schema's pattern; the parser checks the same rule."""

_BASE_COMMIT = re.compile(BASE_COMMIT_PATTERN)


def _check_base_commit(value: str) -> str:
    # fullmatch: `$` alone would let a trailing newline through in Python's re.
    if not _BASE_COMMIT.fullmatch(value):
        raise ValueError(
            "must be a commit sha or ref: not empty, no whitespace or NUL, no leading '-' "
            "(leave it out or send null for the default branch)"
        )
    return value


_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", re.DOTALL)


def repo_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable repository URL, or None when it is (or is a path).

    A value with a ``scheme://`` is a URL and must parse as one: its host (finalize's address
    checks and the clone read it) must be a name or a bracketed IPv6 address, its port a number up
    to 65535; ``urlsplit`` raises on anything else (``https://[x``), which used to surface as a 500.
    What precedes an ``@`` (user and password) is not read: redaction puts ``[REDACTED:kind]``
    there. Anything else is a local path or ``user@host:path``, where brackets are legal.
    """
    m = _URL.fullmatch(url.strip())
    if m is None:
        return None
    scheme, netloc, rest = m.groups()
    host = netloc.rpartition("@")[2]
    try:
        urlsplit(f"{scheme}://{host}{rest}").port  # noqa: B018 - .port raises on a bad port
    except ValueError as exc:
        return f"not a usable repository URL: {exc}"
    return None


def _check_repo_url(value: str) -> str:
    problem = repo_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


CONFIDENCE_WORDS: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.85}
"""The words accepted as a confidence, and the number each stands for when one is needed."""

REASONING_TYPES = ("hypothesis", "observation", "plan", "question", "conclusion")
"""The well-known reasoning types; any other short word is accepted and kept as free text."""


def _check_confidence(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("confidence must be low, medium, high or a number from 0 to 1")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"confidence must be a finite number from 0 to 1, not {value}")
    if isinstance(value, int | float):
        if not 0 <= value <= 1:
            raise ValueError(f"confidence {value} is outside 0..1")
        return value
    if isinstance(value, str) and value.strip().lower() in CONFIDENCE_WORDS:
        return value  # kept exactly as sent ("High" stays "High")
    raise ValueError(f"confidence {value!r} is not low, medium, high or a number from 0 to 1")


Confidence = Annotated[
    str | float,
    BeforeValidator(_check_confidence),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    # low / medium / high in any case, surrounding whitespace allowed (as parsed)
                    "pattern": f"^[{_SPACE}]*"
                    "([Ll][Oo][Ww]|[Mm][Ee][Dd][Ii][Uu][Mm]|[Hh][Ii][Gg][Hh])"
                    f"[{_SPACE}]*$",
                    "description": "low, medium or high, in any case",
                },
                {"type": "number", "minimum": 0, "maximum": 1},
            ]
        }
    ),
]

ExitCode = Annotated[int, Field(strict=True, ge=EXIT_CODES[0], le=EXIT_CODES[1])]
"""An integer in :data:`EXIT_CODES`; strict: ``"1"``, ``1.0`` and ``true`` are refused, not
coerced."""

Duration = Annotated[float, Field(strict=True, ge=0, le=MAX_DURATION_S, allow_inf_nan=False)]
"""Seconds, finite, 0 to :data:`MAX_DURATION_S`; strict: a number (an integer is fine), not a string
or a boolean."""


class _Details(BaseModel):
    """Event details: the known fields are typed; unknown keys are kept and returned unchanged."""

    # JSON has no NaN or Infinity; pydantic-core's parser reads them, so every float refuses them.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ReasoningDetails(_Details):
    """What the developer (or agent) thought."""

    text: str
    """The thought itself, in the developer's words."""
    reasoning_type: str | None = None
    """hypothesis, observation, plan, question, conclusion, or any other short word."""
    confidence: Confidence | None = None
    """low/medium/high (any case) or a number 0..1, kept exactly as sent."""

    @property
    def confidence_value(self) -> float | None:
        """The confidence as a number in 0..1 (words map through :data:`CONFIDENCE_WORDS`)."""
        c = self.confidence
        if c is None or isinstance(c, float | int):
            return c
        return CONFIDENCE_WORDS[c.strip().lower()]


class CommandDetails(_Details):
    """A command that was run and what it printed."""

    command: str
    """The command line as typed."""
    output: str = ""
    """Its output (stdout and stderr as the user saw them)."""
    exit_code: ExitCode | None = None
    """Exit status, when known: an integer in :data:`EXIT_CODES`."""
    cwd: str | None = None
    """Working directory, when known."""
    duration_s: Duration | None = None
    """Wall time in seconds, when known: finite, at most :data:`MAX_DURATION_S`."""


class EditDetails(_Details):
    """A change to one file, as a unified diff (``--- a/f`` / ``+++ b/f`` headers)."""

    file: str
    """Path of the changed file, relative to the repository root."""
    diff: str
    """The unified diff. It is applied to the repository when the trace is finalized."""


def _type_is_required(schema: dict[str, Any]) -> None:
    # Events are told apart by `type`, so one without it is refused: the published schema says so.
    # (The Python default only serves ReasoningEvent.new and friends.)
    schema["properties"]["type"].pop("default", None)
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class _EventBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra=_type_is_required
    )

    seq: int | None = None
    """Position in the trace, 1-based and gap-free; assigned by storage (ignored on input)."""
    timestamp: UtcDatetime = Field(default_factory=utcnow)
    """When it happened; timezone-aware, stored in UTC (naive means UTC; defaults to now)."""


class ReasoningEvent(_EventBase):
    """A hypothesis, observation, plan, question or conclusion."""

    type: Literal["reasoning"] = "reasoning"
    details: ReasoningDetails

    @classmethod
    def new(
        cls,
        text: str,
        reasoning_type: str | None = None,
        confidence: str | float | None = None,
        **extra: Any,
    ) -> ReasoningEvent:
        """Build a reasoning event stamped now."""
        details = {"text": text, "reasoning_type": reasoning_type, "confidence": confidence}
        return cls.model_validate({"details": {**details, **extra}})


class CommandEvent(_EventBase):
    """A command run while debugging, with its output."""

    type: Literal["command"] = "command"
    details: CommandDetails

    @classmethod
    def new(
        cls,
        command: str,
        output: str = "",
        exit_code: int | None = None,
        cwd: str | None = None,
        duration_s: float | None = None,
        **extra: Any,
    ) -> CommandEvent:
        """Build a command event stamped now."""
        details = {
            "command": command,
            "output": output,
            "exit_code": exit_code,
            "cwd": cwd,
            "duration_s": duration_s,
        }
        return cls.model_validate({"details": {**details, **extra}})


class EditEvent(_EventBase):
    """An edit to one file, as a unified diff."""

    type: Literal["edit"] = "edit"
    details: EditDetails

    @classmethod
    def new(cls, file: str, diff: str, **extra: Any) -> EditEvent:
        """Build an edit event stamped now."""
        return cls.model_validate({"details": {"file": file, "diff": diff, **extra}})


Event = Annotated[ReasoningEvent | CommandEvent | EditEvent, Field(discriminator="type")]
"""Any event; ``type`` says which."""

EVENT_LIST: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
"""Validates and serialises a list of events (built once; ingest, storage and the API share it)."""

EVENT_TYPES = ("reasoning", "command", "edit")

TraceStatus = Literal["open", "queued", "finalizing", "finalized"]
"""open: accepting events; queued/finalizing: the pipeline is about to run or running;
finalized: the pipeline ran (``result`` says what it found)."""


class HeldOut(BaseModel):
    """Tests the fix is checked against that the trace did not write, as in SWE-bench: a patch
    of test files applied to both runs, and the tests it must turn from failing to passing."""

    model_config = ConfigDict(extra="forbid")

    test_patch: ColumnText = ""
    """A unified diff (one or many files, ``--- a/f`` / ``+++ b/f``); empty for none."""
    fail_to_pass: list[Annotated[ColumnText, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=10_000
    )
    """Test ids (runner node ids, ``tests/test_x.py::test_y``) that must fail before the edits
    and pass after them; empty: any fail_to_pass test will do."""


class Trace(BaseModel):
    """One debugging session: who, which repository, which bug, and what happened, in order."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: ColumnText | None = None
    """Assigned by storage on submit."""
    developer_id: Annotated[ColumnText, Field(min_length=1, max_length=255)]
    """Who debugged (a person or an agent)."""
    repo_url: Annotated[
        ColumnText,
        AfterValidator(_check_repo_url),
        Field(
            min_length=1,
            description="https/ssh URL (one that parses: a bracketed host is an IPv6 address, "
            "a port is a number up to 65535) or a local path (brackets allowed).",
        ),
    ]
    """Where the code lives (https/ssh URL; local paths only where allowed). A URL must parse as
    one (:func:`repo_url_problem`); a path (no ``scheme://``) may hold any character but NUL."""
    bug_description: ColumnText
    """The bug, as reported."""
    base_commit: (
        Annotated[
            str,
            AfterValidator(_check_base_commit),
            _SchemaPattern(BASE_COMMIT_PATTERN),
            Field(description="a commit sha or ref; never empty"),
        ]
        | None
    ) = None
    """Commit (or ref) the edits apply to; default: the default branch's head at finalize. No
    whitespace or NUL, no leading ``-``, not empty (send null or leave it out for the default)."""
    branch: ColumnText | None = None
    """Branch the work happened on, when known."""
    status: TraceStatus = "open"
    """Lifecycle state; managed by debugtrace."""
    created_at: UtcDatetime | None = None
    """When the trace was submitted (kept if given, e.g. on import)."""
    updated_at: UtcDatetime | None = None
    """Last change (events added, results stored); managed by storage."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form extra information about the session (harness name, model, ...)."""
    events: list[Event] = Field(default_factory=list)
    """The debugging steps, in order of arrival."""
    held_out: HeldOut | None = None
    """Held-out tests to validate the fix against (finalize ``--test-patch`` overrides)."""
    result: TraceResult = Field(default_factory=TraceResult)
    """What finalize found: stages, per-edit status, test validation, grades."""

    def numbered(self) -> list[tuple[int, Event]]:
        """Each event with its ``seq``, or its 1-based position where storage has not numbered
        it yet: how the exports name calls (``call_<seq>``) and find an edit's result."""
        return [(ev.seq if ev.seq is not None else i, ev) for i, ev in enumerate(self.events, 1)]
