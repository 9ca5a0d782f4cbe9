"""A small OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, canned behaviours.

``serve()`` starts it (Starlette app, uvicorn in a background thread, a free port) and yields a
:class:`FakeOpenAI`; the ``fake_openai`` fixture wraps it. Each request to
``POST /v1/chat/completions`` is validated (model, non-empty messages, a ``json_schema`` response
format with a schema), recorded in ``.requests`` and answered with the next behaviour of
``.script`` ("ok" once the script is used up):

- ``ok``: a chat.completion whose content is a valid JSON instance of the requested schema (for the
  grader's schema: score 4 and every rubric name)
- ``429`` (with ``Retry-After: 0``), ``500``, ``401``: an OpenAI-style error body
- ``slow``: sleeps ``slow_s`` seconds (longer than the client's timeout), then answers ``ok``
- ``malformed``: content that is not JSON
- ``refusal``: ``message.refusal`` set, ``content`` null
- ``score9``: a valid-looking answer whose overall score is 9 (out of range)
- ``length``: an ``ok`` answer cut off, ``finish_reason: "length"``
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from debugtrace.grading import RUBRIC

if TYPE_CHECKING:
    from starlette.responses import JSONResponse

__all__ = ["BEHAVIOURS", "FakeOpenAI", "fake_openai", "instance_of", "serve"]

BEHAVIOURS = ("ok", "429", "500", "401", "slow", "malformed", "refusal", "score9", "length")


def instance_of(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A valid instance of a JSON schema (the subset structured outputs use: objects, arrays,
    strings, integers, numbers, booleans, enums, ``$ref``/``$defs``, ``anyOf``).

    Integers are 4 clamped to the bounds; arrays have ``minItems`` (at least one) items.
    """
    root = root if root is not None else schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return instance_of(node, root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return instance_of(schema["anyOf"][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {name: instance_of(sub, root) for name, sub in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [instance_of(schema.get("items", {"type": "string"}), root) for _ in range(n)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", -(10**9))
        high = schema.get("maximum", 10**9)
        return min(max(4, low), high)
    if kind == "boolean":
        return True
    return "Reproduced the failure, then made a small fix and re-ran the tests."


def grade_answer(schema: dict[str, Any]) -> dict[str, Any]:
    """An instance of ``schema``; for a grade schema, score 4 and one item per rubric name."""
    answer = instance_of(schema)
    assert isinstance(answer, dict), "structured outputs ask for an object"
    if answer.get("rubric"):
        template = answer["rubric"][0]
        answer["rubric"] = [
            {**template, "name": name, "score": 4, "reason": f"{name} was fine"} for name in RUBRIC
        ]
    return answer


class FakeOpenAI:
    """The running server: ``url`` (base URL ending in /v1), what it received, what it will do."""

    def __init__(self, slow_s: float = 3.0) -> None:
        self.url = ""
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.slow_s = slow_s
        self._lock = threading.Lock()

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def chat(request: Request) -> JSONResponse:
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with self._lock:
                self.requests.append(body if isinstance(body, dict) else {"_raw": raw.decode()})
                self.headers.append(dict(request.headers))
                behaviour = self.script.pop(0) if self.script else "ok"
            problem = validate(body)
            if problem:
                with self._lock:
                    self.problems.append(problem)
                return error(400, problem, "invalid_request_error")
            assert isinstance(body, dict)
            if behaviour == "429":
                return error(429, "Rate limit reached", "rate_limit_exceeded", {"Retry-After": "0"})
            if behaviour == "500":
                # retry-after-ms keeps the SDK's back-off short; it still retries as for any 5xx.
                return error(
                    500, "The server had an error", "server_error", {"retry-after-ms": "20"}
                )
            if behaviour == "401":
                return error(401, "Incorrect API key provided", "invalid_api_key")
            if behaviour == "slow":
                await asyncio.sleep(self.slow_s)
            schema = body["response_format"]["json_schema"]["schema"]
            answer = grade_answer(schema)
            content: str | None = json.dumps(answer)
            refusal = None
            finish = "stop"
            if behaviour == "malformed":
                content = "Sure! Here is the grade: {score: 4, summary: "
            elif behaviour == "refusal":
                content, refusal = None, "I'm sorry, I can't help with grading this."
            elif behaviour == "score9":
                content = json.dumps({**answer, "score": 9})
            elif behaviour == "length":
                content, finish = (content or "")[:40], "length"
            return JSONResponse(completion(body["model"], content, refusal, finish, body))

        async def not_found(request: Request) -> JSONResponse:
            return error(404, f"no route {request.url.path}", "not_found")

        return Starlette(
            routes=[
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/{path:path}", not_found, methods=["GET", "POST"]),
            ]
        )


def validate(body: Any) -> str | None:
    """What is wrong with a chat request for structured output, or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            return f"bad message {m!r}"
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return "response_format.type must be json_schema"
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "response_format.json_schema.schema must be an object schema"
    return None


def error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    from starlette.responses import JSONResponse

    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def completion(
    model: str, content: str | None, refusal: str | None, finish: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A chat.completion object as the OpenAI API returns it."""
    prompt_tokens = (len(json.dumps(body["messages"])) + 3) // 4
    completion_tokens = (len(content or refusal or "") + 3) // 4
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{model}-fake-2024-08-06",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@contextmanager
def serve(slow_s: float = 3.0) -> Iterator[FakeOpenAI]:
    """Run a :class:`FakeOpenAI` on a free port of 127.0.0.1 for the duration of the block."""
    import uvicorn

    fake = FakeOpenAI(slow_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app(),
        log_level="error",
        lifespan="off",
        ws="none",
        http="h11",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server (skips when starlette/uvicorn are not installed)."""
    pytest.importorskip("starlette", reason="the fake OpenAI server needs the `server` extra")
    pytest.importorskip("uvicorn", reason="the fake OpenAI server needs the `server` extra")
    with serve() as fake:
        yield fake
