"""The built-in executor ``local``: jobs run in an in-process thread pool (zero setup)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from debugtrace.collector import Collector
from debugtrace.jobs import Executor, run_job

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """An in-process thread pool, for the embedded setup (zero configuration)."""

    def __init__(self, settings: Settings) -> None:
        self.collector = Collector(settings=settings)
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="dt-job")

    def submit(self, job_id: str) -> None:
        self.pool.submit(run_job, self.collector, job_id)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.collector.close()
