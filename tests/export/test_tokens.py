"""Token counts of chat rows with the shipped ``o200k_base`` file, never downloading anything.

Read top to bottom: the shipped file is OpenAI's (its hash is the one tiktoken pins); the encoding
built from it is tiktoken's own ``o200k_base``; loading it touches neither the network nor
tiktoken's cache; counts of text and of rows (tool calls, tools), one or many; the error when
tiktoken is missing; and a throughput benchmark on real text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import lzma
import re
import socket
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from debugtrace.errors import ExportError
from debugtrace.export import tokens

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tiktoken") is None,
    reason="tiktoken is not installed (pip install 'debugtrace-collector[tokens]')",
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network and no tiktoken cache: any download attempt raises.

    Returns the directory tiktoken would cache into (it must stay empty).
    """
    import tiktoken.load

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network or tiktoken download attempted: {args!r}")

    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tiktoken's default cache is under it
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)
    monkeypatch.setattr(tiktoken.load, "load_tiktoken_bpe", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    if importlib.util.find_spec("requests") is not None:
        import requests

        monkeypatch.setattr(requests, "get", refuse)
        monkeypatch.setattr(requests.Session, "request", refuse)
    return tmp_path


def test_the_shipped_file_is_openais_o200k_base() -> None:
    import tiktoken_ext.openai_public as openai_public

    packed = resources.files("debugtrace.export").joinpath(tokens.DATA_FILE).read_bytes()
    data = lzma.decompress(packed)
    assert hashlib.sha256(data).hexdigest() == tokens.O200K_BASE_SHA256
    # ... which is the hash the installed tiktoken pins for o200k_base
    source = inspect.getsource(openai_public.o200k_base)
    assert f'expected_hash="{tokens.O200K_BASE_SHA256}"' in source
    assert len(data.splitlines()) == 199_998
    assert tokens.bpe_file() == data
    data_dir = REPO / "src/debugtrace/export/data"
    assert tokens.O200K_BASE_SHA256 in (data_dir / "SOURCE.txt").read_text()
    assert "MIT License" in (data_dir / "LICENSE").read_text()


def test_a_damaged_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lzma, "decompress", lambda packed: b"IQ== 0\n")
    with pytest.raises(ExportError, match="damaged"):
        tokens.bpe_file()


def test_the_encoding_is_tiktokens_own_o200k_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """tiktoken's get_encoding, fed the shipped file through its cache, agrees on everything."""
    import tiktoken
    import tiktoken.registry
    import tiktoken_ext.openai_public as openai_public

    # tiktoken caches a download under the SHA-1 of its URL: put the shipped file there
    url = re.search(r'"(https://[^"]+/o200k_base\.tiktoken)"', inspect.getsource(openai_public))
    assert url is not None
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / hashlib.sha1(url[1].encode()).hexdigest()).write_bytes(tokens.bpe_file())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    theirs = tiktoken.get_encoding("o200k_base")
    ours = tokens.encoding()
    assert ours._pat_str == theirs._pat_str
    assert ours._special_tokens == theirs._special_tokens
    assert ours._mergeable_ranks == theirs._mergeable_ranks
    assert ours.n_vocab == theirs.n_vocab == 200_019
    text = (REPO / "src/debugtrace/export/chat.py").read_text()
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_loads_offline_without_a_cache(offline: Path) -> None:
    tokens.encoding.cache_clear()  # built here, under the fixture
    enc = tokens.encoding()
    assert enc.name == "o200k_base"
    assert enc.encode("hello world") == [24912, 2375]
    assert tokens.encoding() is enc  # once per process
    assert list(offline.iterdir()) == []  # nothing cached


def test_text_counts_are_tiktokens(offline: Path) -> None:
    enc = tokens.encoding()
    assert tokens.count_text("tiktoken is great!") == 6
    assert tokens.count_text("") == 0
    text = (REPO / "src/debugtrace/export/chat.py").read_text()
    assert tokens.count_text(text) == len(enc.encode(text, disallowed_special=()))
    # special-token text in a trace is plain text, not an error and not one token
    assert tokens.count_text("<|endoftext|>") == len(enc.encode_ordinary("<|endoftext|>")) > 1


def test_plain_messages_count_as_the_cookbook_does(offline: Path) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "dev", "content": "Why does test_parse fail?"},
    ]
    expected = (
        3  # reply priming
        + 2 * 3  # per message
        + 1  # name
        + sum(tokens.count_text(v) for m in messages for v in m.values())
    )
    assert tokens.count_tokens(messages) == expected


def test_a_row_with_tool_calls_and_tools_counts(offline: Path) -> None:
    from debugtrace.export.chat import TOOLS

    arguments = '{"command": "python -m pytest tests/test_parse.py -q"}'
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Bug: parse() drops the last field."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "run_command", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "1 failed in 0.02s"},
    ]
    bare = tokens.count_tokens(messages[:1])
    with_call = tokens.count_tokens(messages)
    call = 3 + tokens.count_text("run_command") + tokens.count_text(arguments)
    result = 3 + sum(tokens.count_text(v) for v in messages[2].values())
    assert with_call == bare + 3 + tokens.count_text("assistant") + call + result
    with_tools = tokens.count_tokens(messages, TOOLS)
    assert with_tools > with_call + 12 + 7 * len(TOOLS)


def test_tools_follow_the_cookbooks_rule(offline: Path) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
    t = tokens.count_text
    expected = (
        7
        + t("get_current_weather:Get the current weather in a given location")
        + 3
        + 3
        + t("location:string:The city and state, e.g. San Francisco, CA")
        + 3
        + t("unit:string:The unit of temperature to return")
        - 3
        + 3
        + t("celsius")
        + 3
        + t("fahrenheit")
        + 12
    )
    assert tokens.count_tokens([], [weather]) == 3 + expected
    # a nested schema is not free
    nested: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
            },
        },
    }
    flat: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"paths": {"type": "array"}}},
        },
    }
    assert tokens.count_tokens([], [nested]) > tokens.count_tokens([], [flat])


def test_content_parts_count_their_text(offline: Path) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]
    plain = [{"role": "user", "content": "hello world"}]
    assert tokens.count_tokens(parts) == tokens.count_tokens(plain)


def test_count_rows_matches_count_tokens(offline: Path) -> None:
    from debugtrace.export.chat import TOOLS

    text = (REPO / "src/debugtrace/export/chat.py").read_text()
    rows = [
        {"messages": [{"role": "user", "content": text[: 100 * i]}], "tools": TOOLS, "metadata": {}}
        for i in range(1, 30)
    ]
    rows.append({"messages": []})
    expected = [tokens.count_tokens(r["messages"], r.get("tools", [])) for r in rows]
    assert tokens.count_rows(rows) == expected
    assert tokens.count_rows(iter(rows)) == expected
    assert tokens.count_rows([]) == []


def test_missing_tiktoken_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tiktoken" else real(name, *a)
    )
    tokens.encoding.cache_clear()
    try:
        assert not tokens.available()
        with pytest.raises(ExportError, match=r"tiktoken.*debugtrace-collector\[tokens\]"):
            tokens.count_tokens([{"role": "user", "content": "hi"}])
    finally:
        tokens.encoding.cache_clear()


def test_imports_without_tiktoken() -> None:
    """The module itself imports with tiktoken absent; only counting needs it."""
    import subprocess

    code = (
        "import sys; sys.modules['tiktoken'] = None\n"
        "from debugtrace.export import tokens\n"
        "assert not tokens.available(); print(tokens.TOKENIZER)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "o200k_base (tiktoken)"


def test_throughput_on_real_text(offline: Path) -> None:
    """Tokens per second on a row of real source text: far above what an export needs."""
    sources = sorted((REPO / "src/debugtrace").rglob("*.py"))
    text = "\n".join(p.read_text() for p in sources)[:2_000_000]
    rows = [
        {"messages": [{"role": "tool", "tool_call_id": "c", "content": text[i : i + 20_000]}]}
        for i in range(0, len(text), 20_000)
    ]
    tokens.encoding()
    start = time.perf_counter()
    total = sum(tokens.count_rows(rows))
    seconds = time.perf_counter() - start
    print(f"\n{tokens.TOKENIZER}: {total} tokens in {seconds:.3f}s = {total / seconds:,.0f} tok/s")
    assert total > 100_000
    assert total / seconds > 100_000
