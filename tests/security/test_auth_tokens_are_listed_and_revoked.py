"""Issue 14, item 4: ``debugtrace token list`` and ``debugtrace token revoke``.

Before, a token could be created but never listed or revoked (short of editing the database).
Now the CLI lists every token (id, developer, dates; never the token) and revokes by id or by
developer, through Collector and Storage methods; a revoked token stops working at once, on a
server that is already running.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from debugtrace import Settings
from debugtrace.cli import main
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    url = f"sqlite:///{tmp_path / 'traces.db'}"
    monkeypatch.setenv("DEBUGTRACE_DATABASE_URL", url)
    return Settings(data_dir=tmp_path / "data", database_url=url, load_plugins="", sandbox="local")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_tokens_are_listed_without_their_secret_and_revoked_at_once(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = cli(capsys, "token", "create", "alice").strip()
    bob = cli(capsys, "token", "create", "bob").strip()
    listed = json.loads(cli(capsys, "token", "list", "--json"))
    assert [(t["developer_id"], t["revoked_at"]) for t in listed] == [
        ("alice", None),
        ("bob", None),
    ]
    assert alice not in json.dumps(listed) and bob not in json.dumps(listed)

    with TestClient(create_app(store), base_url=LOCAL) as client:
        as_alice = {"Authorization": f"Bearer {alice}"}
        assert client.get("/api/traces", headers=as_alice).status_code == 200

        out = cli(capsys, "token", "revoke", listed[0]["id"])
        assert listed[0]["id"] in out
        as_bob = {"Authorization": f"Bearer {bob}"}
        assert client.get("/api/traces", headers=as_alice).status_code == 401  # at once
        assert client.get("/api/traces", headers=as_bob).status_code == 200

        cli(capsys, "token", "revoke", "--developer", "bob")
        assert client.get("/api/traces", headers=as_bob).status_code == 401

    table = cli(capsys, "token", "list")
    assert table.count("revoked") == 2
    assert main(["token", "revoke", "0" * 24]) == 2  # an unknown id says so
