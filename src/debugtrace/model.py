"""The trace model (pydantic v2): a trace and its events, exactly in the seed's wire shape.

An event on the wire is ``{"type": ..., "timestamp": ..., "details": {...}}``; ``type`` picks
one of :class:`ReasoningEvent`, :class:`CommandEvent` and :class:`EditEvent`. Unknown keys inside
``details`` are kept and returned as sent; an unknown ``type`` is refused with the allowed ones.
Timestamps are timezone-aware and normalised to UTC (a naive timestamp is taken as UTC). Size
limits are ingest policy, checked by :mod:`debugtrace.ingest.limits` when untrusted input is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
)

from debugtrace.results import TraceResult

__all__ = [
    "CONFIDENCE_WORDS",
    "REASONING_TYPES",
    "CommandDetails",
    "CommandEvent",
    "EditDetails",
    "EditEvent",
    "Event",
    "ReasoningDetails",
    "ReasoningEvent",
    "Trace",
    "TraceStatus",
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


def _no_nul(value: str) -> str:
    # Trace-level fields become database columns, and PostgreSQL text cannot hold NUL.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


ColumnText = Annotated[str, AfterValidator(_no_nul)]


CONFIDENCE_WORDS: dict[str, float] = {"low": 0.25, "medium": 0.5, "high": 0.85}
"""The words accepted as a confidence, and the number each stands for when one is needed."""

REASONING_TYPES = ("hypothesis", "observation", "plan", "question", "conclusion")
"""The well-known reasoning types; any other short word is accepted and kept as free text."""


def _check_confidence(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("confidence must be low, medium, high or a number from 0 to 1")
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
                {"type": "string", "enum": list(CONFIDENCE_WORDS), "description": "any case"},
                {"type": "number", "minimum": 0, "maximum": 1},
            ]
        }
    ),
]


class _Details(BaseModel):
    """Event details: the known fields are typed; unknown keys are kept and returned unchanged."""

    model_config = ConfigDict(extra="allow")


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
    exit_code: int | None = None
    """Exit status, when known."""
    cwd: str | None = None
    """Working directory, when known."""
    duration_s: Annotated[float, Field(ge=0)] | None = None
    """Wall time in seconds, when known."""


class EditDetails(_Details):
    """A change to one file, as a unified diff (``--- a/f`` / ``+++ b/f`` headers)."""

    file: str
    """Path of the changed file, relative to the repository root."""
    diff: str
    """The unified diff. It is applied to the repository when the trace is finalized."""


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class Trace(BaseModel):
    """One debugging session: who, which repository, which bug, and what happened, in order."""

    model_config = ConfigDict(extra="forbid")

    id: ColumnText | None = None
    """Assigned by storage on submit."""
    developer_id: Annotated[ColumnText, Field(min_length=1, max_length=255)]
    """Who debugged (a person or an agent)."""
    repo_url: Annotated[ColumnText, Field(min_length=1)]
    """Where the code lives (https/ssh URL; local paths only where allowed)."""
    bug_description: ColumnText
    """The bug, as reported."""
    base_commit: Annotated[ColumnText, Field(pattern=r"^[^\s-]\S*$")] | None = None
    """Commit (or ref) the edits apply to; default: the default branch's head at finalize."""
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
    result: TraceResult = Field(default_factory=TraceResult)
    """What finalize found: stages, per-edit status, test validation, grades."""
