"""Capture: the ways a debugging session is recorded as it happens.

- :mod:`.recorder`: ``Collector.record()`` for agent harnesses (the Python API);
- :mod:`.session`: the open trace of a repository and branch, shared by every front end below;
- :mod:`.shell`: shell integration (``eval "$(debugtrace shell-init bash)"``, hook scripts in
  ``shell_hooks/``) and ``debugtrace record``;
- :mod:`.pytest_plugin` (the ``pytest11`` entry point, stdlib and pytest only) and
  :mod:`.pytest_recorder`, the process that does its recording.

These are front ends: they build events and hand them to the Collector. Nothing below them
(model, ingest, storage, sandbox, grading, finalize, jobs) imports this package.
"""
