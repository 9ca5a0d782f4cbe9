"""The HTTP API: a thin FastAPI adapter over :class:`debugtrace.Collector` (extra ``server``).

``create_app(settings)`` builds the app; ``debugtrace serve`` runs it with uvicorn. Every endpoint
validates through the library (so errors name fields exactly as the CLI does), and blocking work
runs in the thread pool. Finalize runs as a job on the configured executor.
"""

from __future__ import annotations

from debugtrace.server.app import create_app

__all__ = ["create_app"]
