"""The ``debugtrace-celery`` distribution against real services: Redis, RabbitMQ, PostgreSQL.

A module fixture installs ``plugins/debugtrace-celery`` (``--no-deps``) into a temporary directory
put on the path, so it is found through its dist-info entry point like an installed plugin. Each
test starts a real ``celery worker`` subprocess on a queue of its own (unique per run, deleted
afterwards) and a fresh PostgreSQL database per module; the test process only enqueues and polls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from debugtrace.jobs import Job
from debugtrace.plugins import Plugins
from support import ROOT
from support.calc_repo import example_trace, make_calc_repo
from support.plugin_install import install_plugin
from support.services import drop_pg_database, make_pg_database, require

PLUGIN_SRC = ROOT / "plugins" / "debugtrace-celery"
REDIS_URL = os.environ.get("DEBUGTRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("DEBUGTRACE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
JOB_DEADLINE_S = 90
FAIL_TO_PASS = ["tests/test_calc.py::test_divide_by_zero"]


# -- services and installation -----------------------------------------------------------------


def _reachable(url: str, default_port: int) -> str | None:
    """None when something listens at the URL's host and port, else why not."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"
    return None


def need_redis() -> str:
    reason = _reachable(REDIS_URL, 6379)
    if reason:
        require("Redis", reason)
    return REDIS_URL


def need_rabbitmq() -> str:
    reason = _reachable(RABBITMQ_URL, 5672)
    if reason:
        require("RabbitMQ", reason)
    return RABBITMQ_URL


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed debugtrace-celery distribution (built from source)."""
    return install_plugin(
        tmp_path_factory.mktemp("site"),
        "debugtrace-celery",
        "debugtrace_celery",
        "celery",
        "celery[redis]>=5.3",
    )


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    """One fresh PostgreSQL database for the module (the api's and the workers' shared store)."""
    url, name = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def queue(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A queue of this test's own (both sides read DEBUGTRACE_CELERY_QUEUE); plugin on the path."""
    monkeypatch.syspath_prepend(str(plugin_site))
    name = f"dt-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DEBUGTRACE_CELERY_QUEUE", name)
    return name


def delete_queue(broker: str, queue: str) -> None:
    """Drop the queue, its exchange and whatever is left in them (Redis: the binding keys too)."""
    from kombu import Connection, Exchange, Queue

    # An error here means they are already gone: nothing to clean.
    with Connection(broker, connect_timeout=5) as conn, contextlib.suppress(Exception):
        channel = conn.default_channel
        if broker.startswith("redis"):
            # kombu's Redis transport deletes only the bindings this channel declared.
            bound = Queue(queue, Exchange(queue, "direct"), routing_key=queue)(channel)
            bound.declare()
            bound.delete()
        else:
            channel.queue_delete(queue)
            channel.exchange_delete(queue)


# -- the worker --------------------------------------------------------------------------------


class Worker:
    """``python -m celery -A debugtrace_celery worker`` as a subprocess, logging to a file."""

    def __init__(self, site: Path, broker: str, queue: str, database: str, tmp: Path) -> None:
        self.log = tmp / f"worker-{queue}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "DEBUGTRACE_DATABASE_URL": database,
            "DEBUGTRACE_BROKER_URL": broker,
            "DEBUGTRACE_CELERY_QUEUE": queue,
            "DEBUGTRACE_EXECUTOR": "celery",
            "DEBUGTRACE_SANDBOX": "local",
            "DEBUGTRACE_ALLOW_LOCAL_REPOS": "1",
            "DEBUGTRACE_LOAD_PLUGINS": "celery",
            "DEBUGTRACE_DATA_DIR": str(tmp / "worker-data"),
        }
        self.argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "debugtrace_celery",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        self.cwd = tmp  # not the checkout: a developer's .env must not reach the worker
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the celery worker exited ({self.proc.returncode}):\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it does not exit within 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def make_worker(
    plugin_site: Path, pg: str, queue: str, tmp_path: Path
) -> Iterator[tuple[list[Worker], list[str]]]:
    """Start workers with ``Worker(...)`` via the returned lists; all are stopped and the queue
    is deleted on every broker used, whatever the test's outcome."""
    workers: list[Worker] = []
    brokers: list[str] = []
    yield workers, brokers
    for w in workers:
        w.stop()
    for broker in brokers:
        delete_queue(broker, queue)


def api_collector(pg: str, broker: str, tmp: Path) -> Collector:
    """The api side: jobs go to the ``celery`` executor, found through the plugin's entry point."""
    settings = Settings(
        data_dir=tmp / "api-data",
        database_url=pg,
        executor="celery",
        broker_url=broker,
        load_plugins="celery",
        allow_local_repos=True,
        sandbox="local",
    )
    return Collector(settings=settings)


def wait_for(collector: Collector, job: Job, worker: Worker | None) -> Job:
    deadline = time.monotonic() + JOB_DEADLINE_S
    while True:
        current = collector.job(job.id)
        if current.state in ("done", "failed"):
            return current
        if worker is not None:
            worker.check_alive()
        if time.monotonic() > deadline:
            log = worker.output() if worker else ""
            pytest.fail(f"job still {current.state} after {JOB_DEADLINE_S} s; worker log:\n{log}")
        time.sleep(0.2)


def finalize_through(
    broker: str,
    pg: str,
    queue: str,
    tmp: Path,
    site: Path,
    started: tuple[list[Worker], list[str]],
    *,
    worker_first: bool = True,
) -> None:
    """Enqueue the calc example's finalize on ``broker``; a real worker runs it."""
    workers, brokers = started
    brokers.append(broker)
    repo = tmp / "calc"
    make_calc_repo(repo)
    worker = Worker(site, broker, queue, pg, tmp)
    workers.append(worker)
    with api_collector(pg, broker, tmp) as api:
        trace = api.submit(example_trace(repo))  # creates the schema before any worker opens it
        if worker_first:
            worker.start()
        job = api.enqueue(str(trace.id))
        assert job.state == "queued"
        if not worker_first:
            # Nothing runs it in this process: without a worker the job waits in the broker.
            time.sleep(2)
            assert api.job(job.id).state == "queued"
            assert api.get(str(trace.id)).status == "queued"
            worker.start()
        ended = wait_for(api, job, worker)
        assert ended.state == "done", f"{ended.error}\n{worker.output()}"
        assert ended.attempts == 1
        done = api.get(str(trace.id))
    assert done.status == "finalized"
    v = done.result.validation
    assert v is not None
    assert v.fail_to_pass == FAIL_TO_PASS
    assert v.fix_validated
    # The worker ran it (the task ran there and reported the job's state).
    worker.stop()
    out = worker.output()
    assert "debugtrace.run_job" in out and job.id in out, out
    assert "succeeded" in out and "'done'" in out, out


# -- tests ----------------------------------------------------------------------------------------


def test_the_plugin_registers_the_celery_executor_lazily(plugin_site: Path, queue: str) -> None:
    code = (
        "import sys, debugtrace_celery\n"
        "print('celery' in sys.modules)\n"
        "from debugtrace import Settings\n"
        "from debugtrace.plugins import Plugins\n"
        "print('celery' in Plugins(Settings(load_plugins='celery')).backends('executor'))\n"
        "print('celery' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    # Loading the plugin does not import Celery; the executor is registered by name.
    assert out == ["False", "True", "False"]


def test_the_executor_is_not_loaded_when_plugins_are_blocked(
    queue: str, settings: Settings
) -> None:
    assert "celery" not in Plugins(settings).backends("executor")
    assert "celery" in Plugins(settings.model_copy(update={"load_plugins": "celery"})).backends(
        "executor"
    )


def test_the_executor_needs_a_broker_url(queue: str, settings: Settings) -> None:
    s = settings.model_copy(update={"load_plugins": "celery", "executor": "celery"})
    with pytest.raises(ValueError, match="DEBUGTRACE_BROKER_URL"):
        Plugins(s).create("executor", "celery")


def test_a_broker_that_is_down_fails_the_submit_quickly(
    queue: str, settings: Settings, tmp_path: Path
) -> None:
    from debugtrace_celery import BrokerUnavailable

    from debugtrace.errors import StorageError

    s = settings.model_copy(
        update={
            "load_plugins": "celery",
            "executor": "celery",
            "broker_url": "redis://127.0.0.1:1/0",
        }
    )
    executor = Plugins(s).create("executor", "celery")
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailable, match="stays queued") as info:
            executor.submit("no-such-job")
    finally:
        executor.close()
    assert isinstance(info.value, StorageError)  # the api answers 503
    assert time.monotonic() - started < 15


def test_a_redis_worker_finalizes_the_example(
    pg: str,
    queue: str,
    tmp_path: Path,
    plugin_site: Path,
    make_worker: tuple[list[Worker], list[str]],
) -> None:
    finalize_through(need_redis(), pg, queue, tmp_path, plugin_site, make_worker)


def test_a_rabbitmq_worker_finalizes_the_example(
    pg: str,
    queue: str,
    tmp_path: Path,
    plugin_site: Path,
    make_worker: tuple[list[Worker], list[str]],
) -> None:
    finalize_through(need_rabbitmq(), pg, queue, tmp_path, plugin_site, make_worker)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_job_sent_while_no_worker_runs_waits_in_the_broker(
    broker: str,
    pg: str,
    queue: str,
    tmp_path: Path,
    plugin_site: Path,
    make_worker: tuple[list[Worker], list[str]],
) -> None:
    # The send declares the queue: RabbitMQ would drop a message routed to no queue.
    url = need_redis() if broker == "redis" else need_rabbitmq()
    finalize_through(url, pg, queue, tmp_path, plugin_site, make_worker, worker_first=False)
