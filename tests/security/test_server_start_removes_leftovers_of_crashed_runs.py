"""Issue 14, low: leftover containers, volumes and checkouts after a crash were never cleaned.

``debugtrace.sandbox.docker.sandbox.cleanup_leftovers`` existed but nothing called it. Now the
server calls it when it starts (in the background), only for what is older than any finalize
could take (so a second server on the same engine keeps its running sandboxes), removes the
checkouts killed runs left, and starts just as well when there is no docker SDK or engine.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.errors import SandboxError
from debugtrace.sandbox.docker import sandbox as docker_sandbox
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"


def settings_for(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 't.db'}",
        load_plugins="",
        sandbox="docker",
        test_timeout_s=900,
    )


class FakeEngine:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_the_server_removes_what_crashed_runs_left_when_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeEngine()
    calls: list[tuple[Any, float]] = []
    done = threading.Event()

    def cleanup(client: Any, older_than_s: float = 0) -> int:
        calls.append((client, older_than_s))
        done.set()
        return 2

    monkeypatch.setattr(docker_sandbox, "connect", lambda timeout_s=60: engine)
    monkeypatch.setattr(docker_sandbox, "cleanup_leftovers", cleanup)
    settings = settings_for(tmp_path)
    stale = settings.data_dir / "checkouts" / "0123456789abcdef01234567-dead"
    (stale / "src").mkdir(parents=True)
    day_ago = time.time() - 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    with TestClient(create_app(collector=Collector(settings=settings)), base_url=LOCAL):
        assert done.wait(10), "cleanup_leftovers was never called"
        for _ in range(100):  # the checkout a killed run left goes too
            if not stale.exists():
                break
            time.sleep(0.1)
        assert not stale.exists()
    [(client, older_than_s)] = calls
    assert client is engine and engine.closed
    # Never a sandbox that may still be running: older than a whole finalize could take.
    assert older_than_s >= 3 * 3600


def test_a_server_without_a_docker_engine_starts_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried = threading.Event()

    def no_engine(timeout_s: float = 60) -> Any:
        tried.set()
        raise SandboxError("no Docker engine answers")

    monkeypatch.setattr(docker_sandbox, "connect", no_engine)
    app = create_app(collector=Collector(settings=settings_for(tmp_path)))
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/healthz").status_code == 200
        assert tried.wait(10)
