"""The third-party ``debugtrace-llm`` distribution, end to end through its entry point.

A session fixture builds and installs ``plugins/debugtrace-llm`` (a real wheel, ``--no-deps``)
into a temporary directory that is put on the path, so the venv is not changed and the plugin is
found exactly as an installed one is: through its dist-info entry point. The grader then runs
against fake models registered in-process on llm's own plugin manager.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Collector, Settings
from debugtrace.errors import GradeError
from debugtrace.grading import GradeOutput, Grader
from debugtrace.plugins import Plugins
from debugtrace.testing import GraderContract, example_validation, sample_trace
from support import ROOT
from support.plugin_install import install_plugin

PLUGIN_SRC = ROOT / "plugins" / "debugtrace-llm"

VALID = {
    "score": 4,
    "summary": "Reproduced the crash, then fixed it. The tests confirm the fix.",
    "strengths": ["reproduced first"],
    "weaknesses": ["no confidence stated"],
    "recommendations": ["state confidence"],
    "rubric": [
        {"name": "reproduction", "score": 5, "reason": "pytest -x before the edit"},
        {"name": "fix_minimality", "score": 4, "reason": "a one-line guard"},
        {"name": "not_a_rubric_item", "score": 3, "reason": "dropped"},
    ],
}

# Fake model id -> (supports_schema, what execute() yields, or an exception it raises).
FAKES: dict[str, tuple[bool, str | Exception]] = {
    "dt-fake-structured": (True, json.dumps(VALID)),
    "dt-fake-text": (False, "Here is the grade:\n```json\n" + json.dumps(VALID) + "\n```\n"),
    "dt-fake-garbage": (True, "I think this debugging session was pretty good!"),
    "dt-fake-score-9": (True, json.dumps({**VALID, "score": 9})),
    "dt-fake-missing": (True, json.dumps({"score": 3})),
    "dt-fake-broken": (True, RuntimeError("rate limited\nretry after 30s")),
}


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed debugtrace-llm distribution (built from source)."""
    return install_plugin(
        tmp_path_factory.mktemp("site"), "debugtrace-llm", "debugtrace_llm", "llm", "llm>=0.19"
    )


@pytest.fixture
def on_path(plugin_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The installed plugin importable and discoverable; llm's user dir kept in ``tmp_path``."""
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    return plugin_site


@pytest.fixture
def fake_models(on_path: Path) -> Iterator[dict[str, Any]]:
    """Fake llm models registered on llm's own plugin manager (unregistered afterwards)."""
    import llm
    from llm.plugins import pm

    class FakeModel(llm.Model):
        def __init__(self, model_id: str, schema: bool, answer: str | Exception) -> None:
            self.model_id = model_id
            self.supports_schema = schema
            self.answer = answer
            self.prompts: list[llm.Prompt] = []

        def execute(
            self,
            prompt: llm.Prompt,
            stream: bool,
            response: llm.Response,
            conversation: llm.Conversation | None,
        ) -> Iterator[str]:
            self.prompts.append(prompt)
            if isinstance(self.answer, Exception):
                raise self.answer
            response.set_usage(input=321, output=54)
            yield self.answer

    models = {mid: FakeModel(mid, schema, answer) for mid, (schema, answer) in FAKES.items()}

    class FakeModels:
        @llm.hookimpl
        def register_models(self, register: Any) -> None:
            for model in models.values():
                register(model)

    plugin = FakeModels()
    pm.register(plugin, name="debugtrace-test-fake-models")
    try:
        yield models
    finally:
        pm.unregister(plugin)


def llm_settings(settings: Settings) -> Settings:
    """The test settings with the entry-point plugin ``llm`` allowed to load."""
    return settings.model_copy(update={"load_plugins": "llm"})


def make_grader(settings: Settings, monkeypatch: pytest.MonkeyPatch, model_id: str) -> Grader:
    monkeypatch.setenv("DEBUGTRACE_LLM_MODEL", model_id)
    grader = Plugins(llm_settings(settings)).create("grader", "llm")
    assert isinstance(grader, Grader)
    return grader


def test_cli_lists_the_installed_plugin(on_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(on_path)}
    env.pop("DEBUGTRACE_LOAD_PLUGINS")
    exe = Path(sys.executable).parent / "debugtrace"
    out = subprocess.run(
        [str(exe), "plugins", "--json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)}
    row = rows["grader", "llm"]
    assert row["package"] == "debugtrace-llm"
    assert row["installed"] is True
    assert row["missing"] == []


def test_loading_the_plugin_does_not_import_llm(on_path: Path) -> None:
    code = (
        "import sys, debugtrace_llm; "
        "assert 'llm' not in sys.modules, 'llm imported at plugin load'; "
        "print(debugtrace_llm.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(on_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(str(on_path))


def test_plugin_is_not_loaded_when_plugins_are_blocked(on_path: Path, settings: Settings) -> None:
    assert "llm" not in Plugins(settings).backends("grader")
    assert "llm" in Plugins(llm_settings(settings)).backends("grader")


def test_grades_with_a_structured_output_model(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fake_models: dict[str, Any]
) -> None:
    from debugtrace.grading.prompt import SYSTEM

    grader = make_grader(settings, monkeypatch, "dt-fake-structured")
    grade = grader.grade(sample_trace(), example_validation())
    assert type(grader).__module__ == "debugtrace_llm.grader"
    assert grade.grader == "llm"
    assert grade.model == "dt-fake-structured"
    assert grade.score == 4
    assert grade.grader_version == "0.1.0"
    assert grade.rubric_version == "rubric-1"
    assert set(grade.rubric) == {"reproduction", "fix_minimality"}
    assert grade.rubric["reproduction"].score == 5
    assert grade.usage == {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375}
    assert grade.prompt_hash and len(grade.prompt_hash) == 16
    assert grade.duration_s is not None and grade.duration_s >= 0
    (sent,) = fake_models["dt-fake-structured"].prompts
    assert sent.schema == GradeOutput.model_json_schema()
    assert sent.system == SYSTEM
    assert "divide() crashes on zero" in sent.prompt
    assert "fix VALIDATED" in sent.prompt


def test_grades_with_a_text_only_model(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fake_models: dict[str, Any]
) -> None:
    grade = make_grader(settings, monkeypatch, "dt-fake-text").grade(sample_trace(), None)
    assert (grade.grader, grade.model, grade.score) == ("llm", "dt-fake-text", 4)
    (sent,) = fake_models["dt-fake-text"].prompts
    assert sent.schema is None
    assert "JSON schema" in sent.prompt and '"rubric"' in sent.prompt


@pytest.mark.parametrize("cache", [True, False])
def test_an_unchanged_trace_is_graded_once_when_the_cache_is_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fake_models: dict[str, Any], cache: bool
) -> None:
    pytest.importorskip("debugtrace.grading.cache", reason="this debugtrace has no grade cache")
    s = settings.model_copy(update={"grade_cache": cache})
    trace = sample_trace()  # one trace: prompts show event times, which move between calls
    first = make_grader(s, monkeypatch, "dt-fake-structured").grade(trace, None)
    again = make_grader(s, monkeypatch, "dt-fake-structured").grade(trace, None)
    assert len(fake_models["dt-fake-structured"].prompts) == (1 if cache else 2)
    assert again.model_extra == ({"cached": True} if cache else {})
    assert again.model_dump(exclude={"cached", "duration_s"}) == first.model_dump(
        exclude={"duration_s"}
    )
    make_grader(s, monkeypatch, "dt-fake-structured").grade(trace, example_validation())
    assert len(fake_models["dt-fake-structured"].prompts) == (2 if cache else 3)


@pytest.mark.parametrize(
    ("model_id", "reason"),
    [
        ("dt-fake-garbage", r"invalid grade: answer: Invalid JSON"),
        ("dt-fake-score-9", r"invalid grade: score: Input should be less than or equal to 5"),
        ("dt-fake-missing", r"invalid grade: summary: Field required"),
        ("dt-fake-broken", r"'dt-fake-broken' failed: RuntimeError: rate limited retry after"),
        ("no-such-model-anywhere", r"unknown llm model 'no-such-model-anywhere'"),
    ],
)
@pytest.mark.usefixtures("fake_models")
def test_a_bad_answer_or_model_is_a_one_line_grade_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, model_id: str, reason: str
) -> None:
    grader = make_grader(settings, monkeypatch, model_id)
    with pytest.raises(GradeError, match=reason) as info:
        grader.grade(sample_trace(), example_validation())
    assert "\n" not in str(info.value)


@pytest.mark.usefixtures("fake_models")
def test_regrade_through_the_collector(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with Collector(settings=llm_settings(settings)) as c:
        trace = c.submit(sample_trace().model_dump(mode="json", exclude={"id"}))
        monkeypatch.setenv("DEBUGTRACE_LLM_MODEL", "dt-fake-structured")
        graded = c.grade(str(trace.id), ["llm"])
        assert [(g.grader, g.model) for g in graded.result.grades] == [
            ("llm", "dt-fake-structured")
        ]
        monkeypatch.setenv("DEBUGTRACE_LLM_MODEL", "dt-fake-score-9")
        failed = c.grade(str(trace.id), ["llm"])
    stage = next(s for s in failed.result.stages if s.name == "grade")
    assert stage.status == "failed"
    assert "llm: llm model 'dt-fake-score-9' returned an invalid grade" in stage.message


class TestLLMGraderContract(GraderContract):
    @pytest.fixture(params=["dt-fake-structured", "dt-fake-text"])
    def grader(
        self,
        request: pytest.FixtureRequest,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        fake_models: dict[str, Any],
    ) -> Grader:
        return make_grader(settings, monkeypatch, request.param)
