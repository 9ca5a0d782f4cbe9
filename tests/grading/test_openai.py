"""The ``openai`` grader through the real SDK over real HTTP to a local fake server.

``fake_openai.serve`` answers like the OpenAI API (or fails on purpose: 429, 500, timeouts,
malformed JSON, refusals, out-of-range scores); the SDK finds it through ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from debugtrace.config import Settings
from debugtrace.errors import GradeError
from debugtrace.grading import RUBRIC
from debugtrace.grading.cache import GradeCache
from debugtrace.grading.prompt import build_prompt, estimate_tokens
from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
from debugtrace.plugins import Plugins
from debugtrace.results import Grade, RubricScore
from debugtrace.testing import (
    UNTESTED_REASON,
    GraderContract,
    example_validation,
    sample_trace,
)

pytest.importorskip("openai", reason="the openai grader needs the `openai` extra")
pytest.importorskip("starlette", reason="the fake OpenAI server needs the `server` extra")
pytest.importorskip("uvicorn", reason="the fake OpenAI server needs the `server` extra")

from debugtrace.grading.openai import OpenAIGrader
from support.fake_openai import FakeOpenAI, serve

API_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake server, with the SDK pointed at it through the environment."""
    with serve() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        yield fake
        assert not fake.problems, f"the fake server rejected requests: {fake.problems}"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Settings with a short timeout and two retries, so failure paths finish quickly."""
    return settings.model_copy(update={"grade_timeout_s": 2.0, "grade_retries": 2})


@pytest.fixture
def grader(server: FakeOpenAI, fast: Settings) -> OpenAIGrader:
    return OpenAIGrader(fast)


class TestOpenAIGraderContract(GraderContract):
    @pytest.fixture
    def grader(self, server: FakeOpenAI, fast: Settings) -> OpenAIGrader:
        return OpenAIGrader(fast)


def user_message(body: dict[str, Any]) -> str:
    [user] = [m["content"] for m in body["messages"] if m["role"] == "user"]
    assert isinstance(user, str)
    return user


# -- the request ---------------------------------------------------------------------------------


def test_request_carries_model_schema_and_the_whole_trace(
    grader: OpenAIGrader, server: FakeOpenAI
) -> None:
    trace = sample_trace()
    grader.grade(trace, example_validation(True))
    [body] = server.requests
    assert body["model"] == "gpt-4o"
    assert body["temperature"] == 0
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "GradeOutput"
    assert fmt["json_schema"]["strict"] is True
    props = fmt["json_schema"]["schema"]["properties"]
    assert {"score", "summary", "rubric"} <= set(props)
    assert (props["score"]["minimum"], props["score"]["maximum"]) == (1, 5)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    system = body["messages"][0]["content"]
    assert all(name in system for name in RUBRIC)
    user = user_message(body)
    assert "divide() crashes on zero" in user
    texts = ["no guard for b == 0", "$ pytest -x (exit 1)", "FAILED test_divide_by_zero"]
    texts.append("edit calc.py")
    positions = [user.index(t) for t in texts]
    assert positions == sorted(positions), "events must appear in order"
    assert "VALIDATED" in user
    assert "tests/test_calc.py::test_divide_by_zero" in user
    assert server.headers[0]["authorization"] == f"Bearer {API_KEY}"


def test_a_failed_fix_and_a_missing_verdict_are_said(
    grader: OpenAIGrader, server: FakeOpenAI
) -> None:
    grader.grade(sample_trace(), example_validation(False))
    grader.grade(sample_trace(), None)
    grader.grade(sample_trace(), example_validation(None))
    assert "NOT validated" in user_message(server.requests[0])
    assert "could not be run" in user_message(server.requests[1])
    # Could not test: the model is told the fix is untested and why, never that it failed.
    untested = user_message(server.requests[2])
    assert f"The fix could not be tested: {UNTESTED_REASON}" in untested.replace(
        "the fix", "The fix"
    )
    assert "NOT validated" not in untested


def test_model_comes_from_debugtrace_model(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEBUGTRACE_MODEL", "qwen2.5-7b-instruct")
    grade = OpenAIGrader(Settings()).grade(sample_trace(), None)
    assert server.requests[-1]["model"] == "qwen2.5-7b-instruct"
    assert grade.model == "qwen2.5-7b-instruct-fake-2024-08-06"  # the model the response names
    OpenAIGrader(Settings(model="llama-3.1-8b")).grade(sample_trace(), None)
    assert server.requests[-1]["model"] == "llama-3.1-8b"


def test_grade_has_rubric_and_provenance(fast: Settings, server: FakeOpenAI) -> None:
    trace, validation = sample_trace(), example_validation(True)
    grade = OpenAIGrader(fast).grade(trace, validation)
    assert grade.score == 4
    assert set(grade.rubric) == set(RUBRIC)
    assert all(item.score == 4 and item.reason for item in grade.rubric.values())
    assert grade.grader == "openai"
    assert grade.grader_version == OpenAIGrader.version
    assert grade.rubric_version == "rubric-1"
    assert grade.model == "gpt-4o-fake-2024-08-06"
    assert grade.prompt_hash == build_prompt(trace, validation, fast.grade_token_budget).hash
    assert set(grade.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert grade.usage["total_tokens"] == (
        grade.usage["prompt_tokens"] + grade.usage["completion_tokens"]
    )
    assert grade.usage["prompt_tokens"] > 100
    assert grade.duration_s is not None and grade.duration_s >= 0
    assert grade.model_extra is not None and grade.model_extra["cut_events"] == 0
    # What finalize stores survives a round trip through JSON.
    assert Grade.model_validate_json(grade.model_dump_json()) == grade


def test_plugin_registers_openai_lazily(settings: Settings, server: FakeOpenAI) -> None:
    plugins = Plugins(settings)
    info = plugins.backends("grader")["openai"]
    assert info.requires == ("openai",)
    assert info.install_hint == "pip install 'debugtrace-collector[openai]'"
    assert info.missing() == []
    assert isinstance(plugins.create("grader", "openai"), OpenAIGrader)


# -- failures ------------------------------------------------------------------------------------


def test_rate_limit_is_retried(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    server.script = ["429"]
    grade = grader.grade(sample_trace(), example_validation())
    assert grade.score == 4
    assert len(server.requests) == 2


def test_server_errors_exhaust_the_retries(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    server.script = ["500"] * 10
    with pytest.raises(GradeError, match=r"HTTP 500.*after 2 retries") as info:
        grader.grade(sample_trace(), example_validation())
    assert len(server.requests) == grader.settings.grade_retries + 1
    assert "\n" not in str(info.value)


def test_persistent_rate_limit_is_a_grade_error(fast: Settings, server: FakeOpenAI) -> None:
    server.script = ["429"] * 10
    with pytest.raises(GradeError, match=r"rate limited \(HTTP 429\)"):
        OpenAIGrader(fast.model_copy(update={"grade_retries": 0})).grade(sample_trace(), None)
    assert len(server.requests) == 1


def test_timeout_is_a_grade_error(fast: Settings, server: FakeOpenAI) -> None:
    server.slow_s = 1.5
    server.script = ["slow"] * 10
    quick = fast.model_copy(update={"grade_timeout_s": 0.5, "grade_retries": 1})
    with pytest.raises(GradeError, match=r"no answer within 0.5s after 1 retry"):
        OpenAIGrader(quick).grade(sample_trace(), None)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("malformed", "not valid JSON"),
        ("refusal", "refused to grade: I'm sorry, I can't help"),
        ("score9", r"score: Input should be less than or equal to 5 \(got 9\)"),
        ("length", "cut off at its length limit"),
        ("401", r"API key was rejected \(HTTP 401\).*OPENAI_API_KEY"),
    ],
)
def test_unusable_answers_are_grade_errors(
    grader: OpenAIGrader, server: FakeOpenAI, behaviour: str, reason: str
) -> None:
    server.script = [behaviour]
    with pytest.raises(GradeError, match=reason) as info:
        grader.grade(sample_trace(), example_validation())
    assert "\n" not in str(info.value)
    assert len(server.requests) == 1, "answers that arrived are not retried"


def test_missing_api_key_says_what_to_set(
    fast: Settings, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(GradeError, match=r"set OPENAI_API_KEY.*heuristic grader"):
        OpenAIGrader(fast).grade(sample_trace(), None)
    assert server.requests == []


def test_unreachable_server_is_a_grade_error(
    fast: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with pytest.raises(GradeError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        OpenAIGrader(fast.model_copy(update={"grade_retries": 0})).grade(sample_trace(), None)


# -- the cache -----------------------------------------------------------------------------------


def test_an_unchanged_trace_is_graded_once(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    trace = sample_trace()
    first = grader.grade(trace, example_validation(True))
    again = OpenAIGrader(grader.settings).grade(trace, example_validation(True))  # a new process
    assert len(server.requests) == 1
    assert again.model_extra is not None and again.model_extra["cached"] is True
    assert again.model_dump(exclude={"cached"}) == first.model_dump()
    grader.grade(trace, example_validation(False))  # the verdict changed
    assert len(server.requests) == 2
    grader.grade(trace.model_copy(update={"bug_description": "another bug"}), None)
    assert len(server.requests) == 3
    files = list((grader.settings.data_dir / "grade-cache").iterdir())
    assert len(files) == 3 and all(f.suffix == ".json" for f in files)


def test_a_changed_model_is_not_served_from_the_cache(fast: Settings, server: FakeOpenAI) -> None:
    OpenAIGrader(fast).grade(sample_trace(), None)
    OpenAIGrader(fast.model_copy(update={"model": "other-model"})).grade(sample_trace(), None)
    assert [r["model"] for r in server.requests] == ["gpt-4o", "other-model"]


def test_cache_can_be_turned_off(fast: Settings, server: FakeOpenAI) -> None:
    grader = OpenAIGrader(fast.model_copy(update={"grade_cache": False}))
    grader.grade(sample_trace(), None)
    grader.grade(sample_trace(), None)
    assert len(server.requests) == 2
    assert not (fast.data_dir / "grade-cache").exists()


def test_failures_are_not_cached(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    server.script = ["score9"]
    with pytest.raises(GradeError):
        grader.grade(sample_trace(), None)
    assert grader.grade(sample_trace(), None).score == 4
    assert len(server.requests) == 2


def test_grade_cache_round_trips_and_ignores_corrupt_files(tmp_path: Path) -> None:
    cache = GradeCache(tmp_path / "gc")
    key = "ab" * 32
    assert cache.get(key) is None
    grade = Grade(score=3, summary="s", rubric={"x": RubricScore(score=2)}, grader="g", extra=1)
    cache.put(key, grade)
    assert cache.get(key) == grade
    assert [p.name for p in (tmp_path / "gc").iterdir()] == [f"{key}.json"]  # no temp files
    cache.path(key).write_text('{"score": 9}')
    assert cache.get(key) is None
    cache.path(key).write_bytes(b"\xff\xfe not json")
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="hex"):
        cache.get("../../etc/passwd")


def test_concurrent_grades_share_one_client(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    results: list[Grade] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results.append(grader.grade(sample_trace(bug_description=f"bug {i}"), None))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 6 and len(server.requests) == 6


# -- long traces ---------------------------------------------------------------------------------


def long_trace(n: int = 2000) -> Trace:
    """A long session: reasoning, commands with sizeable outputs, an edit every 100 events."""
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    events: list[Event] = []
    for i in range(n):
        if i % 100 == 50:
            diff = f"--- a/m{i}.py\n+++ b/m{i}.py\n@@ -1 +1 @@\n-old {i}\n+new {i}\n"
            ev: Event = EditEvent.new(f"m{i}.py", diff)
        elif i % 3 == 0:
            ev = ReasoningEvent.new(f"step {i}: maybe the cache key is stale " * 3, "hypothesis")
        else:
            out = "\n".join(f"line {j} of the output of command {i}" for j in range(40))
            ev = CommandEvent.new(f"pytest -k case_{i}", output=out, exit_code=i % 2)
        events.append(ev.model_copy(update={"seq": i + 1, "timestamp": start + timedelta(i)}))
    return sample_trace(events=events)


def test_a_2000_event_trace_fits_the_token_budget(grader: OpenAIGrader, server: FakeOpenAI) -> None:
    budget = grader.settings.grade_token_budget
    trace = long_trace()
    grade = grader.grade(trace, example_validation())
    [body] = server.requests
    contents = "".join(m["content"] for m in body["messages"])
    assert estimate_tokens(contents) <= budget
    # The whole request as sent (JSON escaping, the response schema) stays near the budget.
    assert len(json.dumps(body)) / 4 <= budget * 1.15
    user = user_message(body)
    assert "Trace (2000 events, in order)" in user
    assert "events cut to fit the token budget" in user
    assert "step 0: maybe" in user, "the start is kept"
    assert "command 1999" in user, "the end is kept"
    assert all(f"edit m{i}.py" in user for i in range(50, 2000, 100)), "every edit is kept"
    assert grade.model_extra is not None and grade.model_extra["cut_events"] > 1000


def test_finalize_with_the_openai_grader_stores_the_servers_grade(
    server: FakeOpenAI, fast: Settings, tmp_path: Path
) -> None:
    from debugtrace import Collector
    from support.calc_repo import example_trace, make_calc_repo

    make_calc_repo(tmp_path / "calc")
    s = fast.model_copy(update={"grader": "openai", "allow_local_repos": True, "sandbox": "local"})
    with Collector(settings=s) as c:
        done = c.finalize(str(c.submit(example_trace(tmp_path / "calc")).id))
        again = c.finalize(str(done.id))  # unchanged trace and verdict: the cache answers
    grade_stage = next(st for st in done.result.stages if st.name == "grade")
    assert grade_stage.status == "ok", grade_stage.message
    [grade] = done.result.grades
    assert (grade.grader, grade.score) == ("openai", 4)
    assert server.requests[0]["model"] == "gpt-4o"
    assert grade.model == "gpt-4o-fake-2024-08-06"  # the model the server says answered
    assert "tests/test_calc.py::test_divide_by_zero" in user_message(server.requests[0])
    assert len(server.requests) == 1
    assert again.result.grades[0].score == 4
