"""Token counts of exported chat rows, offline: OpenAI's ``o200k_base`` encoding via tiktoken.

Needs the extra ``tokens`` (``pip install 'debugtrace-collector[tokens]'``), which installs
``tiktoken``. tiktoken alone downloads its BPE file on first use; this module never does: the
file ships with debugtrace (``data/o200k_base.tiktoken.xz``, see ``data/SOURCE.txt``), is
checked against the SHA-256 that tiktoken itself pins for ``o200k_base``
(:data:`O200K_BASE_SHA256`) every time it is loaded, and is handed to ``tiktoken.Encoding``
directly, so neither the network nor tiktoken's cache directory (``TIKTOKEN_CACHE_DIR``) is
touched.

``o200k_base`` is the encoding tiktoken maps GPT-4o, GPT-4.1, GPT-5 and the o-series models to
(``tiktoken.model``), the models OpenAI fine-tunes. Text is encoded with ``encode_ordinary``: a
trace that contains ``<|endoftext|>`` counts it as plain text, as the API does with user content,
instead of raising.

How a row is counted (:func:`count_tokens`) follows OpenAI's cookbook "How to count tokens with
tiktoken" (``num_tokens_from_messages`` and ``num_tokens_for_tools``, the ``gpt-4o`` constants;
its "Chat fine-tuning data prep" notebook counts training rows the same way). OpenAI does not
publish how it renders messages and tools into tokens, so this is an estimate; it has not been
checked against the API's own counts here (no network):

* each message: :data:`TOKENS_PER_MESSAGE`, plus the tokens of each of its string fields
  (``role``, ``content``, ``name``, ``tool_call_id``), plus :data:`TOKENS_PER_NAME` if it has a
  ``name``; ``content`` given as a list of parts counts its ``text`` parts;
* each tool call of an assistant message: :data:`TOKENS_PER_TOOL_CALL` plus the tokens of the
  function's name and of its ``arguments`` string (the cookbook has no rule for these; this
  one is ours);
* the row: :data:`REPLY_PRIMING`;
* the tools, if any: per function :data:`FUNC_INIT` plus the tokens of ``"name:description"``;
  per parameter :data:`PROP_KEY` plus the tokens of ``"name:type:description"`` (and
  :data:`ENUM_INIT`, then :data:`ENUM_ITEM` plus the item's tokens per ``enum`` item), with
  :data:`PROP_INIT` once before the parameters; :data:`FUNC_END` once after all functions.
  Schema keys the cookbook ignores (``items``, nested ``properties``, ...) count as their
  compact JSON, so nested schemas are not free.

:func:`count_rows` counts many rows (the encoding is built once per process, in about 0.25 s).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from binascii import a2b_base64
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from debugtrace.errors import ExportError

if TYPE_CHECKING:
    import tiktoken  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "ENCODING_NAME",
    "EXTRA",
    "O200K_BASE_SHA256",
    "TOKENIZER",
    "available",
    "count_rows",
    "count_text",
    "count_tokens",
    "encoding",
    "require",
]

TOKENIZER = "o200k_base (tiktoken)"
"""What the counts are in: say this next to any number :func:`count_tokens` gives."""
ENCODING_NAME = "o200k_base"
EXTRA = "tokens"
"""The debugtrace extra that installs tiktoken."""
DATA_FILE = "data/o200k_base.tiktoken.xz"
"""The BPE ranks, relative to this package: OpenAI's ``o200k_base.tiktoken``, xz-compressed."""
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""SHA-256 of the uncompressed file: the ``expected_hash`` of ``o200k_base`` in tiktoken's
``tiktoken_ext/openai_public.py``."""

# From tiktoken_ext/openai_public.py (tiktoken 0.14.0), o200k_base(); a test checks that the
# installed tiktoken still defines them so.
PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
SPECIAL_TOKENS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

# OpenAI cookbook, "How to count tokens with tiktoken": num_tokens_from_messages (gpt-4o).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
"""Every reply is primed with ``<|start|>assistant<|message|>``."""
TOKENS_PER_TOOL_CALL = 3
"""Not from the cookbook: a tool call is taken to cost what a message's framing costs."""
# Same notebook, num_tokens_for_tools, gpt-4o / gpt-4o-mini.
FUNC_INIT = 7
PROP_INIT = 3
PROP_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNC_END = 12


def available() -> bool:
    """Whether tiktoken is installed (the counts need it; the BPE file ships with debugtrace)."""
    return importlib.util.find_spec("tiktoken") is not None


def require() -> None:
    """Raise ``ExportError`` saying which extra to install when tiktoken is missing."""
    if not available():
        raise ExportError(
            f"token counts ({TOKENIZER}) need tiktoken: pip install 'debugtrace-collector[{EXTRA}]'"
        )


def bpe_file() -> bytes:
    """The shipped ``o200k_base.tiktoken``, uncompressed, its SHA-256 checked.

    Raises ``ExportError`` if the bytes are not OpenAI's file (a damaged install).
    """
    import lzma

    packed = resources.files(__package__ or "debugtrace.export").joinpath(DATA_FILE).read_bytes()
    data = lzma.decompress(packed)
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_BASE_SHA256:
        raise ExportError(
            f"{DATA_FILE} is damaged: sha256 {digest}, expected {O200K_BASE_SHA256}; "
            "reinstall debugtrace-collector"
        )
    return data


def mergeable_ranks(data: bytes) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file (``base64(token) rank`` per line), as tiktoken's loader does."""
    return {a2b_base64(token): int(rank) for token, rank in map(bytes.split, data.splitlines())}


@functools.lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The ``o200k_base`` encoding, built from the shipped file once per process.

    Raises ``ExportError`` when tiktoken is not installed or the file is damaged.
    """
    require()
    import tiktoken  # type: ignore[import-not-found,unused-ignore]

    enc: tiktoken.Encoding = tiktoken.Encoding(
        ENCODING_NAME,
        pat_str=PAT_STR,
        mergeable_ranks=mergeable_ranks(bpe_file()),
        special_tokens=SPECIAL_TOKENS,
    )
    return enc


def count_text(text: str) -> int:
    """Tokens in ``text``, special-token strings counted as plain text."""
    return len(encoding().encode_ordinary(text))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _tool_parts(tools: Sequence[Mapping[str, Any]], texts: list[str]) -> int:
    """Append the texts the ``tools`` are counted by to ``texts``; return the fixed overhead."""
    fixed = 0
    for tool in tools:
        function = tool.get("function", tool)
        fixed += FUNC_INIT
        name = str(function.get("name", ""))
        texts.append(f"{name}:{_strip_period(str(function.get('description', '')))}")
        parameters = function.get("parameters") or {}
        properties: Mapping[str, Any] = parameters.get("properties") or {}
        if properties:
            fixed += PROP_INIT
        for key, schema in properties.items():
            fixed += PROP_KEY
            kind = schema.get("type", "")
            description = _strip_period(str(schema.get("description", "")))
            texts.append(f"{key}:{kind if isinstance(kind, str) else _json(kind)}:{description}")
            if "enum" in schema:
                fixed += ENUM_INIT
                for item in schema["enum"]:
                    fixed += ENUM_ITEM
                    texts.append(item if isinstance(item, str) else _json(item))
            rest = {k: v for k, v in schema.items() if k not in ("type", "description", "enum")}
            if rest:
                texts.append(_json(rest))
    if tools:
        fixed += FUNC_END
    return fixed


def _message_parts(messages: Iterable[Mapping[str, Any]], texts: list[str]) -> int:
    """Append the texts the ``messages`` are counted by to ``texts``; return the fixed overhead."""
    fixed = REPLY_PRIMING
    for message in messages:
        fixed += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                texts.append(value)
                if key == "name":
                    fixed += TOKENS_PER_NAME
            elif key == "content" and isinstance(value, list):
                texts.extend(
                    part["text"]
                    for part in value
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
            elif key == "tool_calls" and isinstance(value, list):
                for call in value:
                    function = call.get("function") or {}
                    fixed += TOKENS_PER_TOOL_CALL
                    texts.append(str(function.get("name", "")))
                    arguments = function.get("arguments", "")
                    texts.append(arguments if isinstance(arguments, str) else _json(arguments))
    return fixed


def _parts(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> tuple[int, list[str]]:
    texts: list[str] = []
    fixed = _message_parts(messages, texts) + _tool_parts(tools, texts)
    return fixed, texts


def count_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()
) -> int:
    """Estimated tokens of one chat row (``messages`` and ``tools``) in :data:`TOKENIZER`.

    The rule and its sources are in the module's docstring. Raises ``ExportError`` when
    tiktoken is not installed.
    """
    return count_rows([{"messages": messages, "tools": tools}])[0]


def count_rows(rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """:func:`count_tokens` of each row (``{"messages": [...], "tools": [...], ...}``), in order.

    Sequential on purpose: tiktoken's threaded ``encode_ordinary_batch`` was measured 2-2.7 times
    slower on rows of real debugging traces (a thread pool per call and a future per text cost
    more than the encoding, which runs at millions of tokens a second on one core).
    """
    encode = encoding().encode_ordinary
    cache = _SHORT
    counts: list[int] = []
    for row in rows:
        fixed, texts = _parts(row.get("messages") or [], row.get("tools") or [])
        total = fixed
        for text in texts:
            if len(text) > _SHORT_CHARS:
                total += len(encode(text))
                continue
            n = cache.get(text)
            if n is None:
                if len(cache) >= _SHORT_ENTRIES:
                    cache.clear()
                n = cache[text] = len(encode(text))
            total += n
        counts.append(total)
    return counts


# Every row repeats short texts (roles, the system prompt, tool names and schemas, call ids):
# counted once. Bounded, so a stream of distinct texts costs a clear now and then.
_SHORT: dict[str, int] = {}
_SHORT_CHARS = 512
_SHORT_ENTRIES = 8192
