"""The ``docker`` sandbox: every command runs in a fresh, locked-down container of its own.

Layout of one handle (all labelled ``debugtrace=1`` and ``debugtrace.handle=<id>``):

- two volumes, both memory-backed (tmpfs) and so bounded in size: ``/workspace`` (the worktree,
  also the working directory; the checkout's size, plus the environment's copied links such as
  ``node_modules``, plus ``DEBUGTRACE_SANDBOX_DISK_BYTES``) and
  ``/home/sandbox`` (``HOME``, so ``pip install --user`` or caches survive from a setup command
  to the tests; ``DEBUGTRACE_SANDBOX_TMP_BYTES``);
- a *data* container that holds the volumes mounted for the handle's life (a tmpfs volume loses
  its content when no container has it mounted): it only sleeps, as the sandbox user, with no
  capabilities and no network; ``prepare`` copies the worktree into it with ``put_archive``
  (entries owned by the sandbox user) and ``sync_back`` reads it back from it;
- the image: ``settings.docker_image``, or the one the project's environment
  (:attr:`ProjectSpec.environment`, built on the host by :mod:`debugtrace.environments`, the
  builder both sandboxes use) needs, built once and reused (see
  :mod:`debugtrace.sandbox.docker.images`): for Python ``debugtrace-env:py-<key>``, a venv
  ``/opt/env`` with exactly the environment's pinned packages and the project's dist-info (so
  ``{python}`` is ``/opt/env/bin/python``, :meth:`DockerSandbox.python_for`); for Node
  ``debugtrace-node:<key>``, the image plus Debian's ``nodejs``, with the environment's
  ``node_modules`` copied into ``/workspace`` at prepare. Recorded in
  ``handle.state["image_tag"]``, with a line for people in ``handle.state["note"]``;
- every run's variables: ``HOME``, :data:`~debugtrace.sandbox.local.DETERMINISM` (``TZ=UTC``,
  ``PYTHONHASHSEED=0``, the C.UTF-8 locale), the environment's (``PATH`` with its ``bin`` first,
  ``VIRTUAL_ENV``, ``PYTHONPATH`` with ``{workspace}`` made ``/workspace``), then the project's
  own; nothing of the host's;
- per :meth:`DockerSandbox.run`, a *run* container created with that run's
  :class:`~debugtrace.sandbox.ResourceLimits` (memory + swap = ``mem_limit`` so an OOM kill is exit
  137, ``pids_limit``, ``ulimit fsize`` and ``cpu``, network ``none`` unless the run allows it), a
  read-only root file system, a tmpfs ``/tmp`` of ``DEBUGTRACE_SANDBOX_TMP_BYTES``, docker's
  default 64 MiB ``/dev/shm``, ``cap_drop=ALL`` and ``no-new-privileges``. Its main
  process is a ``sleep`` under docker's init; the command is ``exec``-ed into it, and the container
  is removed when the command is over, which kills whatever the command left behind.

A command is over when its main process has exited *and* nothing it started is still running
(the same rule as a process group whose output pipe is still open in the ``local`` sandbox), or
when ``timeout_s`` has passed: then the container is killed from the host side and the result has
``timed_out=True`` and ``exit_code=None``. Output is streamed; only its head and tail are kept.

Every place a command can write is therefore bounded: the root file system is read-only, and
``/tmp``, ``/dev/shm``, ``/workspace`` and ``/home/sandbox`` are tmpfs of a fixed size (whose pages
also count against the run's memory limit). ``storage_opt`` (a size for the container's writable
layer) is not used: it needs overlay2 on xfs with project quotas, and nothing is written there.
Files read back after a run (``fetch``) are at most ``DEBUGTRACE_SANDBOX_FETCH_BYTES`` each.

The engine is the one ``DOCKER_HOST`` names (``docker.from_env``); images are never pulled.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tarfile
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from debugtrace.errors import SandboxError
from debugtrace.sandbox import (
    DEFAULT_FETCH_BYTES,
    ProjectSpec,
    ResourceLimits,
    RunResult,
    Sandbox,
    SandboxHandle,
    fetch_note,
    omitted_notes,
)
from debugtrace.sandbox.docker.images import ENV_PREFIX, RunImage, image_for
from debugtrace.sandbox.local import DETERMINISM, disk_usage
from debugtrace.textutil import BoundedOutput

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["LABEL", "DockerSandbox", "cleanup_leftovers", "remove_container"]

LABEL = "debugtrace"
"""Every container and volume this backend makes carries the label ``debugtrace=1``."""
OWNER_LABEL = f"{LABEL}.owner"
"""``host/pid/start-time`` of the process that made it: ``cleanup_leftovers`` leaves alone what a
live process on this host still uses (another server, another test worker)."""

WORKDIR = "/workspace"
HOME = "/home/sandbox"
BUILD_HINT = (
    "build it with `scripts/build-base-image.sh` from a debugtrace checkout (later: "
    "`debugtrace sandbox build`), or set DEBUGTRACE_DOCKER_IMAGE to an image the engine has; "
    "debugtrace never pulls images"
)
START_HINT = (
    'start one with `eval "$(scripts/dockerd.sh start | tail -n1)"` from a debugtrace checkout, '
    "or point DOCKER_HOST at a running engine"
)
_POLL_S = 0.1
_KEEPER_SLACK_S = 120
"""The keeper process outlives the command's timeout by this much, so a container left behind by a
crashed host process stops by itself."""
_HOLDER_S = 24 * 3600
"""How long the data container keeps a handle's volumes mounted (a handle closed by then is
long gone; a crashed server's is removed by ``cleanup_leftovers``)."""
_TMPFS_SLACK = 1024**2
"""Room on a tmpfs volume beyond the checkout's size, for the copy's own overhead."""


def _docker() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - registry checks `requires` first
        raise SandboxError(
            "the docker sandbox needs the docker SDK: pip install 'debugtrace-collector[docker]'"
        ) from exc
    return docker


def _host() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST is not set)"


def connect(timeout_s: float = 60) -> Any:
    """A docker client for the engine at ``DOCKER_HOST`` that has answered a ping.

    Raises :class:`SandboxError` naming ``DOCKER_HOST`` and how to start an engine otherwise.
    """
    docker = _docker()
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        # probe the socket ourselves: docker-py leaks the socket of a failed unix connect
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError as exc:
                raise SandboxError(
                    f"no Docker engine answers at DOCKER_HOST={host}: {exc}; {START_HINT}"
                ) from exc
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except Exception as exc:
        raise SandboxError(
            f"no Docker engine answers at DOCKER_HOST={_host()}: {exc}; {START_HINT}"
        ) from exc
    return client


def _tar_worktree(
    worktree: Path, uid: int, gid: int, buf: IO[bytes], links: Mapping[str, Path] | None = None
) -> None:
    """Write the worktree to ``buf`` as a tar of ``workspace/`` (plus an empty ``home/sandbox/``),
    every entry owned by ``uid:gid``; extracted at ``/`` it also hands both volumes to that user.
    ``links`` are host folders added as ``workspace/<name>`` (symlinks inside stay symlinks)."""

    replaced = {f"{WORKDIR.strip('/')}/{name}" for name in links or {}}

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if info.ischr() or info.isblk() or info.isfifo():
            return None
        if info.issym() and info.name in replaced:  # a local sandbox's link: the copy replaces it
            return None
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        return info

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(worktree), arcname=WORKDIR.strip("/"), recursive=True, filter=owned)
        replaced.clear()  # inside the copies, every link stays a link
        for name, folder in (links or {}).items():
            arcname = f"{WORKDIR.strip('/')}/{name}"
            tar.add(str(folder), arcname=arcname, recursive=True, filter=owned)
        home = tarfile.TarInfo(HOME.strip("/"))
        home.type, home.mode = tarfile.DIRTYPE, 0o755
        owned(home)
        tar.addfile(home)
    buf.seek(0)


def _safe_relpath(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def _parse_user(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError as exc:
        raise SandboxError(f"DEBUGTRACE_DOCKER_USER must be numeric uid:gid, not {user!r}") from exc


class DockerSandbox(Sandbox):
    """Runs each command in a fresh container of ``settings.docker_image``; see the module doc."""

    name = "docker"
    isolates_runs = True  # a container per run: own network, processes and files

    def __init__(self, settings: Settings | None = None) -> None:
        self.image: str = getattr(settings, "docker_image", "debugtrace-python:3.11")
        self.user: str = getattr(settings, "docker_user", "1000:1000")
        self.network: str = getattr(settings, "docker_network", "bridge")
        self.cpus: float | None = getattr(settings, "docker_cpus", None)
        self.tmp_bytes: int = getattr(settings, "sandbox_tmp_bytes", 512 * 1024**2)
        self.disk_bytes: int = getattr(settings, "sandbox_disk_bytes", 1024**3)
        self.fetch_bytes: int = getattr(settings, "sandbox_fetch_bytes", DEFAULT_FETCH_BYTES)
        self.progress: Callable[[str], None] | None = None
        """Told what a long prepare does (an image build), when set."""
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The docker client (connected on first use)."""
        if self._client is None:
            self._client = connect()
            # close its pooled connections when this sandbox goes away
            weakref.finalize(self, self._client.close)
        return self._client

    def python_for(self, project: ProjectSpec) -> str:
        """``/opt/env/bin/python`` for a Python environment (its image's venv), else
        :attr:`python` (the image's ``python3``): never a path of the host."""
        env = project.environment
        if env is not None and env.kind == "python":
            return f"{ENV_PREFIX}/bin/python"
        return self.python

    def unavailable(self) -> str | None:
        """Why docker cannot be used here (no engine, no image), or None when it can."""
        try:
            self._image_id()  # connects first (self.client), so both checks happen here
        except SandboxError as exc:
            return str(exc)
        return None

    # -- prepare -------------------------------------------------------------------------------

    def _image_id(self, ref: str | None = None) -> str:
        docker = _docker()
        ref = ref or self.image
        try:
            image = self.client.images.get(ref)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"Docker image {ref!r} is missing from the engine at DOCKER_HOST={_host()}: "
                f"{BUILD_HINT}"
            ) from exc
        except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
            raise SandboxError(f"cannot look up image {ref!r}: {exc}") from exc
        return str(image.id)

    def prepare(self, worktree: Path, project: ProjectSpec) -> SandboxHandle:
        """Check the engine and image, find or build the image the project's environment needs
        (:func:`~debugtrace.sandbox.docker.images.image_for`), make the volumes and copy
        ``worktree`` (and the environment's links, e.g. ``node_modules``) into them."""
        docker = _docker()
        worktree = Path(worktree)
        if not worktree.is_dir():
            raise SandboxError(f"worktree {worktree} is not a directory")
        uid, gid = _parse_user(self.user)
        image_id = self._image_id()
        # the image the project's environment needs (built once), or the base image itself
        run_image = image_for(self.client, self.image, project, self.progress)
        tag = run_image.tag
        if tag != self.image:
            image_id = self._image_id(tag)
        links = _links(worktree, run_image)
        hid = uuid.uuid4().hex[:12]
        labels = {LABEL: "1", f"{LABEL}.handle": hid, OWNER_LABEL: _owner()}
        state = {
            "id": hid,
            "image": image_id,
            "image_tag": tag,
            "volumes": [],
            "env": {"HOME": HOME, **DETERMINISM, **run_image.env},
            "note": run_image.note,
            "warning": run_image.warning,
        }
        handle = SandboxHandle(worktree, project, state)
        # memory-backed, so the size is a hard limit (a local volume on disk has none)
        linked = sum(disk_usage(folder) for folder in links.values())
        sizes = {"work": disk_usage(worktree) + linked + _TMPFS_SLACK + self.disk_bytes}
        sizes["home"] = self.tmp_bytes
        try:
            for role in ("work", "home"):
                opts = f"size={sizes[role]},uid={uid},gid={gid},mode=0755,nosuid,nodev"
                vol = self.client.volumes.create(
                    f"debugtrace-{hid}-{role}",
                    labels=labels,
                    driver="local",
                    driver_opts={"type": "tmpfs", "device": "tmpfs", "o": opts},
                )
                handle.state["volumes"].append(vol.name)
            data = self.client.containers.create(
                image_id,
                command=["sleep", str(_HOLDER_S)],
                init=True,
                user=self.user,
                name=f"debugtrace-{hid}-data",
                labels={**labels, f"{LABEL}.role": "data"},
                network_mode="none",
                volumes=self._volumes(handle),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=8,
            )
            handle.state["data"] = data.id
            data.start()  # holds the tmpfs volumes mounted until close
            with tempfile.SpooledTemporaryFile(32 * 1024**2) as tar:
                _tar_worktree(worktree, uid, gid, tar, links)
                data.put_archive("/", tar)
        except BaseException as exc:
            self.close(handle)
            if isinstance(exc, docker.errors.DockerException | OSError):
                raise SandboxError(f"could not prepare the docker sandbox: {exc}") from exc
            raise
        return handle

    def _volumes(self, handle: SandboxHandle) -> dict[str, dict[str, str]]:
        work, home = handle.state["volumes"]
        # nocopy: an empty volume is otherwise filled from (and chowned like) the image's folder
        # at every mount, which hands an empty workspace back to root
        mode = "rw,nocopy"
        return {work: {"bind": WORKDIR, "mode": mode}, home: {"bind": HOME, "mode": mode}}

    # -- run -----------------------------------------------------------------------------------

    def _create_run_container(self, handle: SandboxHandle, limits: ResourceLimits) -> Any:
        docker = _docker()
        ulimits = []
        if limits.file_size_bytes is not None:
            n = limits.file_size_bytes
            ulimits.append(docker.types.Ulimit(name="fsize", soft=n, hard=n))
        if limits.cpu_s is not None:
            ulimits.append(
                docker.types.Ulimit(name="cpu", soft=limits.cpu_s, hard=limits.cpu_s + 5)
            )
        extra: dict[str, Any] = {}
        if limits.memory_bytes is not None:
            extra["mem_limit"] = extra["memswap_limit"] = limits.memory_bytes
        if limits.processes is not None:
            extra["pids_limit"] = limits.processes + 2  # docker-init and the keeper
        if self.cpus:
            extra["nano_cpus"] = int(self.cpus * 1e9)
        keep = int(limits.timeout_s) + _KEEPER_SLACK_S
        return self.client.containers.create(
            handle.state["image"],
            command=["sleep", str(keep)],
            init=True,
            user=self.user,
            working_dir=WORKDIR,
            environment=dict(handle.state["env"]),
            hostname="sandbox",
            labels={
                LABEL: "1",
                f"{LABEL}.handle": handle.state["id"],
                f"{LABEL}.role": "run",
                OWNER_LABEL: _owner(),
            },
            network_mode=self.network if limits.network else "none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmp_bytes},mode=1777"},
            volumes=self._volumes(handle),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=ulimits,
            **extra,
        )

    def run(
        self,
        handle: SandboxHandle,
        argv: Sequence[str],
        limits: ResourceLimits,
        *,
        fetch: Sequence[str] = (),
    ) -> RunResult:
        """Run ``argv`` (no shell) in ``/workspace`` in a fresh container with ``limits``."""
        docker = _docker()
        if handle.state.get("closed") or "data" not in handle.state:
            raise SandboxError("this docker sandbox handle is closed")
        if not argv:
            raise SandboxError("argv is empty: there is no command to run")
        container = None
        try:
            container = self._create_run_container(handle, limits)
            handle.state["run"] = container.id
            container.start()
            return self._exec(handle, container, list(argv), limits, fetch)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"docker sandbox run failed: {exc}") from exc
        except OSError as exc:  # the engine's socket went away
            raise SandboxError(f"lost the Docker engine at DOCKER_HOST={_host()}: {exc}") from exc
        finally:
            if container is not None:
                try:
                    self._remove_container(container.id)
                    handle.state.pop("run", None)
                except Exception:  # engine gone: close() tries again and reports it
                    pass

    def _exec(
        self,
        handle: SandboxHandle,
        container: Any,
        argv: list[str],
        limits: ResourceLimits,
        fetch: Sequence[str],
    ) -> RunResult:
        api = self.client.api
        env = {**handle.state["env"], **dict(handle.project.env)}
        exec_id = api.exec_create(
            container.id, argv, workdir=WORKDIR, user=self.user, environment=env, stdin=False
        )["Id"]
        out = BoundedOutput(limits.output_bytes)
        done = threading.Event()
        start = time.monotonic()
        # A CancellableStream: chunks of stdout and stderr in the order they came; the socket has
        # no read timeout, and a lost connection ends it like EOF (then exec_inspect fails).
        stream = api.exec_start(exec_id, stream=True)
        sockets = _sockets_of(api, stream)

        def reader() -> None:
            try:
                for chunk in stream:
                    out.feed(chunk)
            finally:
                done.set()

        thread = threading.Thread(target=reader, name="debugtrace-docker-output", daemon=True)
        try:
            thread.start()
            deadline = start + limits.timeout_s
            timed_out = not done.wait(max(deadline - time.monotonic(), 0))
            exit_code: int | None = None
            if not timed_out:
                exit_code = self._exit_code(exec_id, container)
                # The command is over when nothing it started still runs (or at the timeout).
                while self._stragglers(container) and time.monotonic() < deadline:
                    time.sleep(_POLL_S)
                timed_out = time.monotonic() >= deadline and self._stragglers(container)
            if timed_out:
                exit_code = None
                container.kill()  # everything the command started; ends the output stream
            duration = time.monotonic() - start
            thread.join(5)
        finally:
            for closeable in (stream, *sockets):
                with contextlib.suppress(Exception):
                    closeable.close()
        files, omitted = self._fetch(container, fetch)
        text = out.text()
        text += omitted_notes(omitted)
        if handle.state.get("warning"):
            text += f"\n[debugtrace sandbox: {handle.state['warning']}]\n"
        return RunResult(
            exit_code=exit_code,
            output=text,
            duration_s=duration,
            timed_out=timed_out,
            output_bytes=out.total,
            files=files,
            files_omitted=omitted,
        )

    def _exit_code(self, exec_id: str, container: Any) -> int | None:
        """The exec's exit code, once the engine has noticed it ended."""
        api = self.client.api
        for _ in range(50):
            info = api.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            state = api.inspect_container(container.id)["State"]
            if not state.get("Running"):  # the whole container died (e.g. OOM-killed its init)
                return 137 if state.get("OOMKilled") else int(state.get("ExitCode") or 137)
            time.sleep(_POLL_S)
        raise SandboxError(f"the engine did not report how exec {exec_id[:12]} ended")

    def _stragglers(self, container: Any) -> bool:
        """Whether processes other than docker-init and the keeper run in ``container``."""
        try:
            procs = self.client.api.top(container.id).get("Processes") or []
        except Exception:  # not running any more: nothing left
            return False
        return len(procs) > 2

    def _fetch(
        self, container: Any, names: Sequence[str]
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        """(files, omitted): each file at most ``fetch_bytes``, judged by the engine's stat
        before anything is read, and read no further than that (plus the tar framing)."""
        docker = _docker()
        files: dict[str, bytes] = {}
        omitted: dict[str, str] = {}
        for name in names:
            rel = _safe_relpath(name)
            if rel is None:
                continue
            try:
                stream, info = container.get_archive(f"{WORKDIR}/{rel}")
            except docker.errors.NotFound:
                continue
            try:
                size = int((info or {}).get("size") or 0)
                if size > self.fetch_bytes:
                    omitted[name] = fetch_note(size, self.fetch_bytes)
                    continue
                data = _read_single_file(stream, self.fetch_bytes)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
            if isinstance(data, str):
                omitted[name] = data
            elif data is not None:
                files[name] = data
        return files, omitted

    # -- close ---------------------------------------------------------------------------------

    def _remove_container(self, cid: str) -> None:
        remove_container(self.client, cid)

    def close(self, handle: SandboxHandle) -> None:
        """Remove the handle's containers and volumes (forced; idempotent)."""
        if handle.state.get("closed"):
            return
        docker = _docker()
        problems: list[str] = []
        for key in ("run", "data"):
            cid = handle.state.get(key)
            if cid:
                try:
                    self._remove_container(cid)
                except Exception as exc:
                    problems.append(f"container {cid[:12]}: {exc}")
        for name in handle.state.get("volumes", []):
            try:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.remove_volume(name, force=True)
            except Exception as exc:
                problems.append(f"volume {name}: {exc}")
        handle.state["closed"] = True
        if problems:
            raise SandboxError(
                "could not remove " + "; ".join(problems) + " (they carry the label debugtrace=1; "
                "debugtrace.sandbox.docker.sandbox.cleanup_leftovers removes them)"
            )

    def sync_back(self, handle: SandboxHandle) -> None:
        """Copy the files in ``/workspace`` back over the worktree (new and changed files; files
        deleted inside the sandbox stay on the host). Links and special files are skipped, and
        so is ``.git`` (test code must not plant config or hooks that host git would run); nothing
        is written through a symlink of the worktree (its target could be anywhere)."""
        if handle.state.get("closed") or "data" not in handle.state:
            raise SandboxError("this docker sandbox handle is closed")
        docker = _docker()
        try:
            data = self.client.containers.get(handle.state["data"])
            stream, _stat = data.get_archive(WORKDIR)
            with tempfile.SpooledTemporaryFile(32 * 1024**2) as buf:
                for chunk in stream:
                    buf.write(chunk)
                buf.seek(0)
                with tarfile.open(fileobj=buf, mode="r|") as tar:
                    for member in tar:
                        _extract(tar, member, handle.worktree)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"could not copy the workspace back: {exc}") from exc


def _links(worktree: Path, run_image: RunImage) -> dict[str, Path]:
    """The environment's folders to copy into the workspace: plain names the worktree does not
    have already (as the local sandbox links them)."""
    links: dict[str, Path] = {}
    for name, folder in run_image.links.items():
        if "/" in name or name in ("", ".", ".."):
            continue
        there = worktree / name
        # the worktree's own folder wins; the local sandbox's link to the same folder does not
        if os.path.lexists(there) and not (
            there.is_symlink() and there.resolve() == Path(folder).resolve()
        ):
            continue
        if not Path(folder).is_dir():
            raise SandboxError(f"the environment's {name} ({folder}) is missing: build it again")
        links[name] = Path(folder)
    return links


def remove_container(client: Any, cid: str) -> None:
    """Remove container ``cid`` (and its anonymous volumes), killing it if it runs. A removal
    the engine is already doing (an earlier request whose reply timed out under load: 409
    "already in progress") is waited for instead of reported as a leftover."""
    docker = _docker()
    try:
        client.api.remove_container(cid, force=True, v=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if exc.status_code != 409 or "already in progress" not in str(exc):
            raise
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client.api.inspect_container(cid)
            except docker.errors.NotFound:
                return
            time.sleep(0.2)
        raise


def _sockets_of(api: Any, stream: Any) -> list[Any]:
    """The socket objects under an exec's output stream, to close them whatever state the HTTP
    response is in (docker-py's ``CancellableStream.close`` skips a response that reached EOF)."""
    try:
        sock = api._get_raw_response_socket(stream._response)
    except Exception:
        return []
    inner = getattr(sock, "_sock", None)  # socket.SocketIO wraps the real socket
    return [sock, inner] if inner is not None else [sock]


def _read_single_file(stream: Iterator[bytes], limit: int) -> bytes | str | None:
    """The file in a one-entry tar stream; a reason (str) when it is not a regular file or is
    larger than ``limit``; None for a directory. Reads at most ``limit`` plus the tar framing."""
    buf = io.BytesIO()
    cap = limit + 64 * 1024  # headers (PAX: long names) and padding
    for chunk in stream:
        buf.write(chunk)
        if buf.tell() > cap:
            return f"more than {limit} bytes, the limit (DEBUGTRACE_SANDBOX_FETCH_BYTES)"
    buf.seek(0)
    try:
        with tarfile.open(fileobj=buf, mode="r") as tar:
            member = tar.next()  # the path itself; a directory is not a file to fetch
            if member is None or member.isdir():
                return None
            if not member.isfile():
                return "not a regular file"
            if member.size > limit:
                return fetch_note(member.size, limit)
            f = tar.extractfile(member)
            return f.read(limit) if f is not None else None
    except tarfile.TarError:
        return "unreadable archive from the engine"


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> None:
    parts = PurePosixPath(member.name).parts[1:]  # drop the leading "workspace"
    if not parts or ".." in parts or PurePosixPath(member.name).is_absolute():
        return
    if parts[0].lower().rstrip(". ") == ".git":
        return
    # every folder on the way must be a real folder of the worktree, not a link out of it
    for i in range(1, len(parts)):
        if root.joinpath(*parts[:i]).is_symlink():
            return
    target = root.joinpath(*parts)
    if member.isdir() and target.is_symlink():
        return
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
    elif member.isfile():
        f = tar.extractfile(member)
        if f is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        with open(target, "wb") as out:
            while chunk := f.read(1024 * 1024):
                out.write(chunk)
        target.chmod(member.mode & 0o777)


def _start_time(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _owner() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{_start_time(os.getpid()) or '?'}"


def _owned_by_another_live_process(labels: dict[str, str] | None) -> bool:
    """Whether the object's owner is another process of this host that is still running."""
    host, _, rest = ((labels or {}).get(OWNER_LABEL) or "").partition("/")
    pid_text, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    return started != "?" and _start_time(int(pid_text)) == started


def cleanup_leftovers(client: Any, older_than_s: float = 0) -> int:
    """Remove containers and volumes labelled ``debugtrace=1`` older than ``older_than_s``.

    For crashed runs (a process killed before ``close``). Objects that another live process of
    this host made (another server or test worker on the same engine, still using them) are
    left alone. Returns how many objects were removed.
    """
    now = datetime.now(UTC)
    removed = 0

    def age(created: str | None) -> float:
        if not created:
            return float("inf")
        stamp = created.replace("Z", "+00:00")
        if "." in stamp:  # docker's nanoseconds are too precise for fromisoformat
            main, _, frac = stamp.partition(".")
            digits = "".join(c for c in frac if c.isdigit())
            stamp = f"{main}.{digits[:6]}{frac[len(digits) :]}"
        try:
            return (now - datetime.fromisoformat(stamp)).total_seconds()
        except ValueError:
            return float("inf")

    for c in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        if _owned_by_another_live_process(c.get("Labels")):
            continue
        if age(datetime.fromtimestamp(c["Created"], UTC).isoformat()) >= older_than_s:
            with contextlib.suppress(Exception):
                client.api.remove_container(c["Id"], force=True, v=True)
                removed += 1
    for v in client.api.volumes(filters={"label": f"{LABEL}=1"}).get("Volumes") or []:
        if _owned_by_another_live_process(v.get("Labels")):
            continue
        if age(v.get("CreatedAt")) >= older_than_s:
            with contextlib.suppress(Exception):
                client.api.remove_volume(v["Name"], force=True)
                removed += 1
    return removed
