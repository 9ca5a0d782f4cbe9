"""What the sending side (the executor) and the worker side (the Celery app) agree on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["QUEUE_ENV", "TASK_NAME", "CelerySettings", "make_app"]

TASK_NAME = "debugtrace.run_job"
QUEUE_ENV = "DEBUGTRACE_CELERY_QUEUE"


class CelerySettings(BaseSettings):
    """The plugin's own knobs (``DEBUGTRACE_CELERY_*``); the broker is debugtrace's own
    ``DEBUGTRACE_BROKER_URL``."""

    model_config = SettingsConfigDict(
        env_prefix="DEBUGTRACE_CELERY_", env_file=".env", extra="ignore"
    )

    queue: str = Field(
        "debugtrace",
        min_length=1,
        description="Queue the jobs are sent to and the workers consume (same on both sides).",
    )


def make_app(broker_url: str, queue: str) -> Celery:
    """A Celery app on ``broker_url`` whose tasks go to ``queue``; no result backend: a job's
    state lives in the debugtrace database."""
    from celery import Celery

    app = Celery("debugtrace", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_routes={TASK_NAME: {"queue": queue}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A job is acknowledged only once it ran: a worker that dies mid-job leaves the message to
        # be delivered again (the job's claim in the database keeps it from running twice).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Finalize jobs are long: a worker takes one message at a time, never a backlog.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Fail a submit within seconds when the broker is down instead of hanging the request.
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app
