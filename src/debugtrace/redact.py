"""Secret redaction at ingestion: nothing secret reaches storage, logs or a grader prompt.

Every string of a trace (command lines, outputs, diffs, reasoning, ``details``, the bug
description, metadata) goes through :meth:`Redactor.redact`, which replaces each secret with a
typed placeholder, ``[REDACTED:aws-secret-key]``, and counts what it replaced by kind (never the
value); the counts go on the event as ``details.redacted``.

Speed matters (this is the ingest hot path), so detection is layered:

1. one case-insensitive regex pass over the whole string looks for anything suspect: a known
   token prefix, a secret-looking name, credentials in a URL, a long token. Most text has none
   and costs one ``search``;
2. only then do the precise patterns run (cloud keys, GitHub/GitLab/Slack/OpenAI/... tokens,
   private key blocks, ``user:password@`` in URLs, ``SECRET_NAME=value`` assignments, JWTs, long
   high-entropy strings that are not hashes, UUIDs or base64 images), plus the configured extra
   patterns and the ``redact`` hook of plugins;
3. and only lines that still look suspect afterwards (a secret-looking name with a value, an
   unexplained long token) go to `detect-secrets`, whose many vendor detectors run at ~150 µs a
   line.

Diffs stay applicable: a secret on a context or removed line is redacted like any other, and the
apply stage matches that line against the checkout with the placeholder as a wildcard
(:func:`restore_context`); a secret on an added line stays redacted in the applied result.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Event, Trace

__all__ = [
    "PLACEHOLDER",
    "Finding",
    "Redactor",
    "redact_events",
    "redact_trace",
    "restore_context",
]

PLACEHOLDER = "[REDACTED:{kind}]"
_PLACEHOLDER_RE = re.compile(r"\[REDACTED:[a-z0-9-]+\]")


@dataclass(frozen=True, order=True)
class Finding:
    """A secret found in a string: where it is and what kind it is."""

    start: int
    end: int
    kind: str


# -- 1. the suspect pass ------------------------------------------------------------------------

# Every token-shaped secret is a run of 20+ token characters; every named one has a secret-looking
# name nearby; URL passwords need "://"; private keys "-----BEGIN". These checks are C-speed
# substring searches and one regex, run over a whole batch of strings at once.
KEYWORDS = ("key", "secret", "passw", "pwd", "token", "credential", "bearer")
_RUN = re.compile(r"[A-Za-z0-9+/_\-]{20}")
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9+_\-])[A-Za-z0-9][A-Za-z0-9+/_\-]{18,}[A-Za-z0-9]={0,2}(?![A-Za-z0-9+/=_\-])"
)
_DOT_TOKEN = re.compile(r"\b(?:eyJ|SG\.)[A-Za-z0-9_\-.]{20,}")  # JWTs and SendGrid keys have dots
# Token prefixes that have a precise pattern below (checked on each long token).
_PREFIXES = (
    "AKIA", "ASIA", "ABIA", "ACCA", "gh", "github_pat_", "gl", "xox", "sk", "rk_", "AIza",
    "npm_", "pypi-",
)  # fmt: skip


_T = r"[A-Za-z0-9+/=_\-]"
_BLOB_PATTERN = (
    r"(?i:key|secret|passw|pwd|token|credential|bearer)|://|-----BEGIN| -u|--user"
    r"|A[KS]IA|gh[pousr]_|github_pat_|gl(?:pat|dt|rt|ptt|cbt)-|xox[abposre]-|sk-|[rs]k_live|AIza|eyJ"
    r"|npm_|pypi-|SG\."
    # Every run of 33+ token characters with a digit in it (16+ on one side of the digit): an
    # unnamed secret is only called one from 32 characters on, and shorter token formats have
    # their prefix above.
    rf"|{_T}{{16,}}[0-9]{_T}*|{_T}*[0-9]{_T}{{16,}}"
)


def _compile_blob() -> Any:
    # RE2 scans this alternation as one DFA, ~1 GB/s; Python's backtracking engine tries every
    # branch at every position and is ~100x slower on it (kept only as a fallback).
    try:
        import re2  # type: ignore[import-untyped]

        return re2.compile(_BLOB_PATTERN)
    except ImportError:  # pragma: no cover - google-re2 is a dependency
        return re.compile(_BLOB_PATTERN)


_BLOB = _compile_blob()


def _suspect(text: str) -> tuple[bool, bool, bool, bool]:
    """Which families could be in ``text``: (named, url, private key, long token)."""
    lower = text.lower()
    return (
        any(k in lower for k in KEYWORDS) or " -u" in text or "--user" in text,
        "://" in text and "@" in text,
        "-----BEGIN" in text,
        _RUN.search(text) is not None,
    )


# -- 2. precise patterns: (kind, regex, group holding the secret) --------------------------------

# A secret-looking name: anchored on the keyword (a leading character class would backtrack
# quadratically over long runs), then the rest of the identifier.
_NAME = (
    r"(?:secret|passw(?:or)?d|pwd|token|api_?key|apikey|access_?key|private_?key|credentials?"
    r"|auth_?key)[A-Za-z0-9_.\-]*"
)
Pattern = tuple[str, "re.Pattern[str]", int]

_TOKEN_PATTERNS: list[Pattern] = [
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), 0),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{82})\b"), 0),
    ("gitlab-token", re.compile(r"\bgl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_\-]{20,}"), 0),
    ("slack-token", re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"), 0),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}"), 0),
    ("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"), 0),
    ("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_\-]{20,}"), 0),
    ("openai-key", re.compile(r"\bsk-[A-Za-z0-9]{20,}T3BlbkFJ[A-Za-z0-9]{20,}"), 0),
    ("openai-key", re.compile(r"\bsk-[A-Za-z0-9]{48}\b"), 0),
    ("stripe-key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{20,}"), 0),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), 0),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0),
    ("pypi-token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"), 0),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"), 0),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
        0,
    ),
]
_NAMED_PATTERNS: list[Pattern] = [
    (
        "aws-secret-key",
        re.compile(
            r"(?i:aws)[A-Za-z0-9_.\-]{0,30}?(?i:secret|key)[A-Za-z0-9_.\-\"']{0,30}?\s*[:=]>?\s*"
            r"[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        1,
    ),
    ("bearer-token", re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9_\-.=+/]{16,})"), 1),
    # curl -u user:password, --user=user:password
    ("basic-auth", re.compile(r"(?:\s-u\s*|--user[\s=])[\"']?[^\s:\"']+:([^\s\"']{4,})"), 1),
    # NAME=value, NAME: value, "name": "value", name = 'value' for secret-looking names.
    (
        "secret-assignment",
        re.compile(
            r"(?i:" + _NAME + r")[\"']?\s*(?::=|=>|[:=])\s*[\"']?([^\s\"',;}{)(<>\[\]]{6,})"
        ),
        1,
    ),
]
# user:password@host in any URL (the user name stays).
_URL_PATTERN: Pattern = (
    "url-password",
    re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*:([^\s/@]+)@"),
    1,
)
_PEM_PATTERN: Pattern = (
    "private-key",
    re.compile(
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
        r"-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----",
        re.DOTALL,
    ),
    0,
)

# Values of a secret-looking name that are not secrets: references, placeholders, masks.
_NOT_A_VALUE = re.compile(
    r"^(?:\$\{?\w+\}?|%\(?\w+\)?s?|\{\{.*\}\}|<[^>]*>?|\*+|x{4,}|\.{3,}|REDACTED.*|\[REDACTED.*"
    r"|(?i:true|false|none|null|undefined|changeme|password|secret|example|required|optional"
    r"|string|str|bytes|int|bool|dict|list|os\.environ.*|getenv.*)"
    # a reference to another name (settings.SECRET_KEY, self.token, config["x"]), not a value
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\(.*)?|[A-Za-z_]\w*\[.*|[A-Z][A-Z0-9_]*)$"
)

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGIT = re.compile(r"[0-9]")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_UUIDISH = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_HASH_PREFIX = re.compile(r"(?:sha\d{1,3}[-:=]|md5[-:=]|base64,|integrity[\"':= ]+)$", re.I)
_HASH_TOKEN = ("sha1-", "sha256-", "sha384-", "sha512-", "md5-")
ENTROPY_MIN_LENGTH = 32
"""Unnamed tokens shorter than this are never called secrets on entropy alone."""
ENTROPY_BITS = 4.3
"""Shannon entropy (bits per character) from which a long mixed token counts as a secret."""
MAX_ENTROPY_TOKEN = 200
"""Longer tokens are data (base64 images, blobs), not credentials."""


def entropy(token: str) -> float:
    """Shannon entropy of ``token`` in bits per character."""
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in Counter(token).values())


def _mixed(token: str) -> bool:
    # Cheap C-level tests first: most long tokens are words, identifiers, paths or hex hashes.
    if token.isalpha() or _HEX.match(token) or token.count("/") > 2:
        return False
    return bool(_DIGIT.search(token) and _UPPER.search(token) and _LOWER.search(token))


def _high_entropy(text: str, token: str, start: int) -> bool:
    if not ENTROPY_MIN_LENGTH <= len(token) <= MAX_ENTROPY_TOKEN or not _mixed(token):
        return False
    if token.startswith(_HASH_TOKEN) or _UUIDISH.search(token):
        return False  # sha512-... (npm integrity), UUIDs
    if _HASH_PREFIX.search(text[max(0, start - 16) : start]):
        return False  # sha256:..., sha512-... integrity, data:...;base64,...
    return entropy(token) >= ENTROPY_BITS


# -- 3. detect-secrets, on what still looks suspect --------------------------------------------

_DS_LOCK = threading.Lock()
_DS_NAMED = re.compile(r"(?i:" + _NAME + r")\s*[\"']?\s*(?::=|=>|[:=])")
DS_ENTROPY_BITS = 3.5
"""A line goes to detect-secrets when it has an unexplained mixed token at least this random."""


def _ds_line(line: str, named: bool) -> bool:
    if named and _DS_NAMED.search(line):
        return True
    return any(
        _mixed(m.group()) and entropy(m.group()) >= DS_ENTROPY_BITS
        for m in _TOKEN.finditer(line)
        if "[REDACTED:" not in m.group()
    )


def _detect_secrets(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line index, kind, value) for each finding of detect-secrets' plugins and filters."""
    try:
        from detect_secrets.core.scan import _process_line_based_plugins
        from detect_secrets.settings import default_settings
    except ImportError:  # pragma: no cover - a core dependency; tolerate a broken install
        return []
    out = []
    with _DS_LOCK, default_settings():
        for secret in _process_line_based_plugins(list(enumerate(lines, 1)), filename="t.txt"):
            if secret.secret_value:
                kind = re.sub(r"[^a-z0-9]+", "-", secret.type.lower()).strip("-")
                out.append((secret.line_number - 1, kind, secret.secret_value))
    return out


# -- the redactor -------------------------------------------------------------------------------


class Redactor:
    """Finds and replaces secrets; one per Collector (patterns compiled once).

    ``extra`` maps kind names to regexes (the whole match, or group 1 when there is one, is the
    secret; they run on every string); ``hook`` is called with each suspect string and returns
    more findings (plugins' ``redact`` hook); ``detect_secrets=False`` skips the third layer.
    """

    def __init__(
        self,
        extra: Mapping[str, str] | None = None,
        hook: Callable[[str], Iterable[Finding]] | None = None,
        *,
        detect_secrets: bool = True,
    ) -> None:
        self.extra: list[Pattern] = []
        for kind, regex in (extra or {}).items():
            compiled = re.compile(regex)
            self.extra.append((kind, compiled, 1 if compiled.groups else 0))
        self.hook = hook
        self.use_detect_secrets = detect_secrets

    def suspects(self, texts: Sequence[str]) -> list[int]:
        """The indexes of the strings that may hold a secret (the others certainly hold none),
        found with one RE2 pass over all of them joined: the ingest path calls this per batch."""
        if self.extra or self.hook:
            return list(range(len(texts)))
        blob = "\x00".join(texts)
        if _BLOB.search(blob) is None:
            return []
        ends = list(accumulate(len(t) + 1 for t in texts))
        picked = set()
        for m in _BLOB.finditer(blob):
            hit = m.group()
            if len(hit) >= 17 and (_HEX.match(hit) or _UUIDISH.fullmatch(hit)):
                continue  # a commit or content hash, a UUID: not a secret on its own
            picked.add(bisect_right(ends, m.start()))
        return sorted(picked)

    def suspect(self, text: str) -> bool:
        """Whether ``text`` may hold a secret (False means it certainly holds none)."""
        return bool(self.suspects([text]))

    def find(self, text: str) -> list[Finding]:
        """Every secret in ``text``, non-overlapping, in order."""
        named, url, pem, long_run = _suspect(text)
        patterns: list[Pattern] = list(self.extra)
        if named:
            patterns += _NAMED_PATTERNS
        if url:
            patterns.append(_URL_PATTERN)
        if pem:
            patterns.append(_PEM_PATTERN)
        tokens = list(_TOKEN.finditer(text)) if long_run else []
        if any(m.group().startswith(_PREFIXES) for m in tokens) or (
            long_run and (_DOT_TOKEN.search(text) or "hooks.slack.com" in text)
        ):
            patterns += _TOKEN_PATTERNS
        found: list[Finding] = []
        for kind, regex, group in patterns:
            for m in regex.finditer(text):
                value = m.group(group)
                if value is None:
                    continue
                if kind == "secret-assignment" and (
                    _NOT_A_VALUE.match(value) or "[REDACTED:" in value
                ):
                    continue
                found.append(Finding(m.start(group), m.end(group), kind))
        for m in tokens:
            if _high_entropy(text, m.group(), m.start()):
                found.append(Finding(m.start(), m.end(), "high-entropy"))
        if self.hook is not None:
            found.extend(self.hook(text))
        found = _merge(_outside_placeholders(text, found))
        if self.use_detect_secrets and (named or long_run):
            more = self._detect_secrets(text, found, named)
            found = _merge(found + _outside_placeholders(text, more))
        return found

    def _detect_secrets(self, text: str, known: list[Finding], named: bool) -> list[Finding]:
        # Only lines that still look suspect once the known findings are masked.
        masked = _mask(text, known)
        if len(masked) != len(text):
            # Offsets below must be the original text's: mask with same-length filler instead.
            masked = _mask(text, known, keep_length=True)
        lines = masked.split("\n")
        offsets = [0]
        for line in lines[:-1]:
            offsets.append(offsets[-1] + len(line) + 1)
        picked = [i for i, line in enumerate(lines) if _ds_line(line, named)]
        if not picked:
            return []
        extra = []
        for idx, kind, value in _detect_secrets([lines[i] for i in picked]):
            line_no = picked[idx]
            line = lines[line_no]
            if len(value) < 6 or _NOT_A_VALUE.match(value) or "\x00" in value:
                continue
            if value.startswith(_HASH_TOKEN) or _HEX.match(value) or _UUIDISH.search(value):
                continue  # content hashes (commit ids, npm integrity) and UUIDs in quotes
            at = line.find(value)
            while at >= 0:
                base = offsets[line_no] + at
                extra.append(Finding(base, base + len(value), kind))
                at = line.find(value, at + len(value))
        return extra

    def redact(self, text: str, *, checked: bool = False) -> tuple[str, Counter[str]]:
        """``text`` with each secret replaced by its placeholder, and the count per kind
        (``checked``: :meth:`suspects` already picked it)."""
        if not checked and not self.suspect(text):
            return text, _NONE
        found = self.find(text)
        if not found:
            return text, _NONE
        return _mask(text, found), Counter(f.kind for f in found)

    def redact_value(self, value: Any, counts: Counter[str]) -> Any:
        """Redact every string inside ``value`` (dicts, lists, nested), adding to ``counts``;
        returns the redacted value (the same object when nothing was found)."""
        if isinstance(value, str):
            new, found = self.redact(value)
            if found:
                counts.update(found)
            return new
        if isinstance(value, dict):
            changed = {k: self.redact_value(v, counts) for k, v in value.items()}
            return value if all(changed[k] is value[k] for k in value) else changed
        if isinstance(value, list):
            items = [self.redact_value(v, counts) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value


_GENERIC = {"secret-assignment": 1, "secret-keyword": 1, "high-entropy": 2}
"""On equal spans the specific kind wins (an AWS key id assigned to a name is an AWS key id)."""


def _outside_placeholders(text: str, found: list[Finding]) -> list[Finding]:
    # Redacting twice changes nothing: what is already a placeholder is left alone.
    if "[REDACTED:" not in text:
        return found
    done = [(m.start(), m.end()) for m in _PLACEHOLDER_RE.finditer(text)]
    return [f for f in found if not any(f.start < e and s < f.end for s, e in done)]


def _positions(hay: str, needle: str) -> list[int]:
    out = []
    at = hay.find(needle)
    while at >= 0:
        out.append(at)
        at = hay.find(needle, at + 1)
    return out


_NONE: Counter[str] = Counter()


def _merge(found: list[Finding]) -> list[Finding]:
    """Sorted and without overlaps: a specific finding (an AWS key) beats a generic one it
    overlaps (``credentials: AWS_SECRET_ACCESS_KEY=...`` read as an assignment), then the longer
    finding wins (a private key over its lines)."""
    kept: list[Finding] = []
    for rank in sorted({_GENERIC.get(f.kind, 0) for f in found}):
        for f in sorted(
            (f for f in found if _GENERIC.get(f.kind, 0) == rank),
            key=lambda f: (f.start, -(f.end - f.start)),
        ):
            if not any(f.start < k.end and k.start < f.end for k in kept):
                kept.append(f)
    return sorted(kept)


def _mask(text: str, found: list[Finding], keep_length: bool = False) -> str:
    parts = []
    pos = 0
    for f in found:
        parts.append(text[pos : f.start])
        parts.append("\x00" * (f.end - f.start) if keep_length else PLACEHOLDER.format(kind=f.kind))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


# -- diffs: context lines whose secret was redacted still apply ---------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def restore_context(diff: str, read_source: Callable[[str], list[str] | None]) -> str:
    """Put back, from the file being patched, the context and removed lines of ``diff`` whose
    secrets were redacted, so that the diff applies; returns the diff (unchanged when no such line
    matches). ``read_source(path)`` returns the file's lines (without newlines) or None.

    A line with placeholders matches a source line when everything outside the placeholders is
    identical; the hunk's old side is matched as a block at its stated position, else anywhere in
    the file (the first match).
    """
    if "[REDACTED:" not in diff:
        return diff
    lines = diff.split("\n")
    path: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- "):
            name = line[4:].split("\t")[0]
            path = None if name == "/dev/null" else (name[2:] if name[:2] == "a/" else name)
        m = _HUNK.match(line)
        if m and path is not None:
            body = []
            j = i + 1
            while j < len(lines) and lines[j][:1] in (" ", "-", "+", "\\"):
                if lines[j][:1] in (" ", "-"):
                    body.append(j)
                j += 1
            if any("[REDACTED:" in lines[k] for k in body):
                source = read_source(path)
                if source is not None:
                    at = _locate([lines[k][1:] for k in body], source, int(m.group(1)) - 1)
                    if at is not None:
                        for n, k in enumerate(body):
                            lines[k] = lines[k][0] + source[at + n]
            i = j
            continue
        i += 1
    return "\n".join(lines)


def _locate(old: list[str], source: list[str], hint: int) -> int | None:
    patterns = [_line_pattern(line) for line in old]

    def fits(at: int) -> bool:
        return at + len(old) <= len(source) and all(
            p.fullmatch(source[at + n]) for n, p in enumerate(patterns)
        )

    if hint >= 0 and fits(hint):
        return hint
    return next((at for at in range(len(source)) if fits(at)), None)


def _line_pattern(line: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER_RE.split(line)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


# -- traces and events --------------------------------------------------------------------------

# The string fields of each kind of event's details (the rest are numbers, flags and extras).
_FIELDS = {
    "command": ("command", "output", "cwd"),
    "edit": ("file", "diff"),
    "reasoning": ("text",),
}


def redact_events(
    redactor: Redactor,
    events: Sequence[Event],
    texts: list[str] | None = None,
    extras: list[int] | None = None,
) -> None:
    """Redact a batch of (freshly parsed, unshared) events in place: every string field and
    ``details`` extra; each event that had secrets gets ``details.redacted`` = counts by kind.

    ``texts`` are the events' string fields in slot order (``command, output, cwd or ""`` for a
    command, ``file, diff`` for an edit, ``text`` for reasoning), when the caller gathered them
    already (``limits.check_events`` does, in its own pass over the batch), and ``extras`` the
    indexes of the events whose details have extra keys."""
    if texts is None:
        texts = []
        for ev in events:
            d = ev.details
            texts += [getattr(d, name) or "" for name in _FIELDS[ev.type]]
    # One RE2 pass over the whole batch; only what it picks is looked at again.
    picked = redactor.suspects(texts)
    if extras is None:
        extras = [i for i, ev in enumerate(events) if ev.details.__pydantic_extra__]
    if not picked and not extras:
        return  # the common case
    slots = [(i, name) for i, ev in enumerate(events) for name in _FIELDS[ev.type]]
    counts: dict[int, Counter[str]] = {}
    for k in picked:
        i, name = slots[k]
        new, found = redactor.redact(texts[k], checked=True)
        if found:
            setattr(events[i].details, name, new)
            counts.setdefault(i, Counter()).update(found)
    for i in extras:
        extra = events[i].details.__pydantic_extra__
        assert extra is not None
        found = Counter()
        for key, value in list(extra.items()):
            if key != "redacted":
                extra[key] = redactor.redact_value(value, found)
        if found:
            counts.setdefault(i, Counter()).update(found)
    for i, found in counts.items():
        extra = events[i].details.__pydantic_extra__
        assert extra is not None  # details models allow extra keys
        previous = extra.get("redacted")
        total = Counter(previous) if isinstance(previous, dict) else Counter()
        total.update(found)
        extra["redacted"] = dict(sorted(total.items()))


def redact_trace(redactor: Redactor, trace: Trace) -> None:
    """Redact a (freshly parsed) trace in place: its events (see :func:`redact_events`), the bug
    description, the repository URL's password and the metadata; counts of the trace's own
    fields go to ``metadata["redacted"]``."""
    redact_events(redactor, trace.events)
    found: Counter[str] = Counter()
    trace.bug_description = redactor.redact_value(trace.bug_description, found)
    trace.repo_url = redactor.redact_value(trace.repo_url, found)
    if trace.branch:
        trace.branch = redactor.redact_value(trace.branch, found)
    metadata = {k: v for k, v in trace.metadata.items() if k != "redacted"}
    redacted = redactor.redact_value(metadata, found)
    if found:
        trace.metadata = {**redacted, "redacted": dict(sorted(found.items()))}
    elif redacted is not metadata:  # pragma: no cover - found and redacted change together
        trace.metadata = redacted
