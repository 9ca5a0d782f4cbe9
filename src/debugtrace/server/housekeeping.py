"""What crashed runs leave behind, removed when the server starts (best effort, in the background).

A finalize killed mid-run (kill -9, a power cut) leaves its docker containers and volumes, and its
checkout directory. Only containers and volumes older than any run could take are removed (and
``cleanup_leftovers`` spares those of live processes), and only checkouts no live run holds the
lock of, so a second server on the same engine or data directory never loses a running job's
sandbox. A missing docker SDK or engine is normal (the local sandbox): nothing to clean then.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["leftover_age_s", "remove_leftovers", "start_cleanup"]

log = logging.getLogger(__name__)

MIN_AGE_S = 3 * 3600.0


def leftover_age_s(settings: Settings) -> float:
    """How old a container or volume must be to count as left over: longer than a whole finalize
    could run (clone, then the tests before and after, each repeated)."""
    run_s = settings.clone_timeout_s + (settings.repeat + 1) * settings.test_timeout_s
    return max(MIN_AGE_S, 3 * run_s)


def remove_leftovers(settings: Settings) -> int:
    """Remove what crashed runs left (containers, volumes, checkouts); returns how many. Never
    raises."""
    older_than_s = leftover_age_s(settings)
    removed = 0
    if settings.sandbox in ("docker", "auto"):
        try:
            from debugtrace.sandbox.docker.sandbox import cleanup_leftovers, connect

            client = connect(timeout_s=10)
        except Exception as exc:  # no SDK, no engine: nothing of ours can be there
            log.debug("no docker engine to clean up: %s", exc)
        else:
            try:
                removed += cleanup_leftovers(client, older_than_s=older_than_s)
            except Exception as exc:
                log.warning("could not remove leftover sandbox containers: %s", exc)
            finally:
                client.close()
    try:
        from debugtrace.finalize.workspace import remove_stale_checkouts

        # A live run holds its checkout's lock, so the workspace's own age limit is enough.
        removed += remove_stale_checkouts(settings.data_dir / "checkouts")
    except Exception as exc:
        log.warning("could not remove leftover checkouts: %s", exc)
    if removed:
        log.info("removed %d leftovers of crashed runs", removed)
    return removed


def start_cleanup(settings: Settings) -> threading.Thread:
    """Run :func:`remove_leftovers` in a daemon thread (a slow docker engine must not delay the
    server's start); returns the thread."""
    thread = threading.Thread(
        target=remove_leftovers, args=(settings,), name="dt-cleanup", daemon=True
    )
    thread.start()
    return thread
