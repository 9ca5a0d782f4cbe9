"""The ``celery`` executor: ``submit`` publishes the job id; a Celery worker runs the job."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from debugtrace.errors import StorageError
from debugtrace.jobs import Executor

from .common import TASK_NAME, CelerySettings, make_app

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["BrokerUnavailable", "CeleryExecutor"]

log = logging.getLogger(__name__)


class BrokerUnavailable(StorageError):
    """The job could not be handed to the broker. It stays ``queued`` in the database and is sent
    again by ``Collector.resume_jobs`` (when the api starts)."""


class CeleryExecutor(Executor):
    """Sends each job id as the task ``debugtrace.run_job`` to ``settings.broker_url``.

    Never runs a job in this process: a worker (``celery -A debugtrace_celery worker``) on the
    same database claims and runs it.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.broker_url:
            raise ValueError(
                "the celery executor needs a broker: set DEBUGTRACE_BROKER_URL "
                "(redis://host:6379/0 or amqp://user:password@host:5672//)"
            )
        self.broker_url = settings.broker_url
        self.queue = CelerySettings().queue
        self.app = make_app(self.broker_url, self.queue)
        # One connection of our own (not kombu's process-wide pools, which close() could not
        # release without breaking other apps on the same URL), opened on first submit.
        self._lock = threading.Lock()
        self._connection: Any = None

    def submit(self, job_id: str) -> None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self.app.connection_for_write()
                # Declares the queue too, so a job sent before any worker started waits in it.
                self.app.send_task(
                    TASK_NAME, args=[job_id], queue=self.queue, connection=self._connection
                )
            except Exception as exc:  # kombu's OperationalError, socket errors, ...
                self._drop_connection()
                log.warning("could not send job %s to the broker: %s", job_id, exc)
                raise BrokerUnavailable(
                    f"could not send job {job_id} to the broker ({type(exc).__name__}: {exc}); "
                    "it stays queued and is sent again when the api restarts"
                ) from exc

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # a broken connection may fail to close: nothing else to do
                log.debug("closing the broker connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
        self.app.close()
