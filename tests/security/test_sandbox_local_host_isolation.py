"""Issue 14, item 3: test code in the local (bubblewrap) sandbox cannot reach the host.

``--ro-bind / /`` showed test code every Unix socket (PostgreSQL with trust auth: ``COPY ... TO
PROGRAM`` runs a host command; ssh-agent, session bus, docker under /run) and every world-readable
file (the data dir, a 0644 database). The sandbox's root is now an allow-list, and the database
and its folder are created private.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import socket
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from debugtrace import Settings
from debugtrace.errors import SandboxError
from debugtrace.sandbox import ProjectSpec, ResourceLimits, SandboxHandle
from debugtrace.sandbox.local import LocalSandbox
from debugtrace.storage.sql.engine import make_engine
from support.services import require

PROJECT = ProjectSpec(kind="python", test_command=("true",))
LIMITS = ResourceLimits(timeout_s=60)


@pytest.fixture
def sandbox(tmp_path: Path) -> LocalSandbox:
    if not shutil.which("bwrap"):
        require("bubblewrap", "bwrap is not on PATH (apt-get install bubblewrap)")
    return LocalSandbox(Settings(data_dir=tmp_path / "data"), use_bwrap=True)


@pytest.fixture
def handle(sandbox: LocalSandbox, tmp_path: Path) -> Iterator[SandboxHandle]:
    wt = tmp_path / "wt"
    wt.mkdir()
    h = sandbox.prepare(wt, PROJECT)
    yield h
    sandbox.close(h)


def run_probe(sandbox: LocalSandbox, handle: SandboxHandle, code: str) -> str:
    (handle.worktree / "probe.py").write_text(code)
    os.chmod(handle.worktree / "probe.py", 0o644)
    r = sandbox.run(handle, [sys.executable, "probe.py"], LIMITS)
    assert r.exit_code == 0, r.output
    return r.output


@contextlib.contextmanager
def listening_unix_socket(path: Path) -> Iterator[Path]:
    """A socket anyone may connect to (0777, like PostgreSQL's), removed afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        os.chmod(path, 0o777)
        server.listen()
        yield path
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


CONNECT = """
import socket, sys
for path in sys.argv[1:] or {paths!r}:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(3)
    try:
        s.connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print("unreachable", path, exc.strerror)
"""


def test_host_unix_sockets_under_run_var_run_and_tmp_are_unreachable(
    sandbox: LocalSandbox, handle: SandboxHandle
) -> None:
    tag = uuid.uuid4().hex[:10]
    user_dir = Path("/run/user") / str(os.getuid())  # ssh-agent, gpg-agent, session bus live here
    made = [p for p in (user_dir.parent, user_dir) if not p.exists()]
    shared_tmp = Path(f"/tmp/dt-sec-{tag}")
    shared_tmp.mkdir(mode=0o755)
    os.chmod(shared_tmp, 0o755)
    try:
        with (
            listening_unix_socket(Path(f"/run/dt-sec-{tag}.sock")) as run_sock,
            listening_unix_socket(user_dir / f"dt-sec-{tag}" / "agent.sock") as agent,
            listening_unix_socket(shared_tmp / "tmp.sock") as tmp_sock,
        ):
            os.chmod(agent.parent, 0o755)
            paths = [str(run_sock), f"/var/run/dt-sec-{tag}.sock", str(agent), str(tmp_sock)]
            pg = Path("/var/run/postgresql/.s.PGSQL.5432")
            if pg.exists():
                paths.append(str(pg))
            out = run_probe(sandbox, handle, CONNECT.format(paths=paths))
    finally:
        shutil.rmtree(shared_tmp, ignore_errors=True)
        shutil.rmtree(user_dir / f"dt-sec-{tag}", ignore_errors=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
    assert "CONNECTED" not in out, out
    assert out.count("unreachable") == len(paths)


def test_tcp_to_local_services_is_refused(sandbox: LocalSandbox, handle: SandboxHandle) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ports = [5432, 6379, 5672, listener.getsockname()[1]]
    code = (
        "import socket\n"
        f"for port in {ports!r}:\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=3).close()\n"
        "        print('CONNECTED', port)\n"
        "    except OSError as exc:\n"
        "        print('refused', port, exc.strerror)\n"
    )
    try:
        out = run_probe(sandbox, handle, code)
    finally:
        listener.close()
    assert "CONNECTED" not in out, out
    assert out.count("\nrefused") + out.startswith("refused") == len(ports)


def test_world_readable_files_outside_the_checkout_are_invisible(
    sandbox: LocalSandbox, handle: SandboxHandle
) -> None:
    tag = uuid.uuid4().hex
    secret = f"canary-{uuid.uuid4().hex}"  # the files' content, not in their names
    # a data dir someone made world-readable, with a 0644 database in it, and a file in /srv
    data = Path(f"/var/tmp/dt-sec-{tag}/data")
    data.mkdir(parents=True)
    for folder in (data.parent, data):
        os.chmod(folder, 0o755)
    (data / "debugtrace.db").write_text(secret)
    os.chmod(data / "debugtrace.db", 0o644)
    srv = Path(f"/srv/dt-sec-{tag}.txt")
    srv.parent.mkdir(exist_ok=True)
    srv.write_text(secret)
    os.chmod(srv, 0o644)
    try:
        code = (
            "import os\n"
            f"for path in [{str(data / 'debugtrace.db')!r}, {str(srv)!r}]:\n"
            "    try:\n"
            "        print('READ', open(path).read())\n"
            "    except OSError as exc:\n"
            "        print('hidden', path, exc.strerror)\n"
            "for top in ('/run', '/var/run', '/home', '/srv', '/var/lib', '/mnt', '/media'):\n"
            "    print(top, 'EXISTS' if os.path.exists(top) else 'absent')\n"
        )
        out = run_probe(sandbox, handle, code)
    finally:
        shutil.rmtree(data.parent, ignore_errors=True)
        srv.unlink()
    assert secret not in out, out
    assert out.count("hidden") == 2, out
    assert "EXISTS" not in out, out


def test_host_configuration_outside_the_allow_list_is_invisible(
    sandbox: LocalSandbox, handle: SandboxHandle
) -> None:
    candidates = ["/etc/pip.conf", "/etc/gitconfig", "/etc/npmrc", "/etc/ssl/private"]
    present = [p for p in candidates if os.path.exists(p)]
    if not present:
        pytest.skip("this host has none of " + ", ".join(candidates))
    code = (
        f"import os\nfor p in {present!r}:\n    print(p, 'EXISTS' if os.path.exists(p) else '-')\n"
    )
    out = run_probe(sandbox, handle, code)
    assert "EXISTS" not in out, out


def test_test_code_cannot_rewrite_the_checkouts_git_config(
    sandbox: LocalSandbox, tmp_path: Path
) -> None:
    # git later runs on this checkout on the host: a planted core.fsmonitor would be a command
    wt = tmp_path / "repo"
    (wt / ".git").mkdir(parents=True)
    (wt / ".git" / "config").write_text("[core]\n")
    h = sandbox.prepare(wt, PROJECT)
    try:
        code = (
            "try:\n"
            "    open('.git/config', 'a').write('[core]\\n\\tfsmonitor = touch /tmp/pwned\\n')\n"
            "    print('WROTE')\n"
            "except OSError as exc:\n"
            "    print('denied', exc.strerror)\n"
        )
        out = run_probe(sandbox, h, code)
    finally:
        sandbox.close(h)
    assert "WROTE" not in out
    assert "fsmonitor" not in (wt / ".git" / "config").read_text()


def test_the_local_sandbox_never_shares_the_host_network(
    sandbox: LocalSandbox, handle: SandboxHandle
) -> None:
    with pytest.raises(SandboxError, match="network"):
        sandbox.run(handle, ["true"], ResourceLimits(network=True))


def test_the_database_file_and_its_folder_are_created_private(tmp_path: Path) -> None:
    db = tmp_path / "new-data-dir" / "debugtrace.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in (db.parent, db, db.with_name(db.name + "-wal"))
        }
    finally:
        engine.dispose()
    assert modes == {"new-data-dir": 0o700, "debugtrace.db": 0o600, "debugtrace.db-wal": 0o600}


def test_an_existing_world_readable_database_file_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "debugtrace.db"
    db.touch()
    os.chmod(db, 0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_host_configuration_that_may_hold_credentials_is_hidden(
    sandbox: LocalSandbox, handle: SandboxHandle
) -> None:
    # npm's global npmrc (a registry token) lives in /usr/local/etc, inside the /usr the sandbox
    # needs; Maven's settings.xml (server passwords) in /etc/maven, next to the launcher config
    # Maven needs (m2.conf, logging), which alone are shown.
    out = run_probe(
        sandbox,
        handle,
        "import os\n"
        "print('usr-local-etc', sorted(os.listdir('/usr/local/etc'))"
        " if os.path.isdir('/usr/local/etc') else 'absent')\n"
        "print('maven', sorted(os.listdir('/etc/maven')) if os.path.isdir('/etc/maven') else [])\n",
    )
    assert "usr-local-etc []" in out or "usr-local-etc absent" in out
    shown = out.split("maven ", 1)[1].splitlines()[0]
    assert "settings.xml" not in shown and set(ast.literal_eval(shown)) <= {"logging", "m2.conf"}
