"""Vendored third-party trees: tests/test_real_world.py runs them in a sandbox; pytest must not.

The ``__init__.py`` beside this file gives it a module name of its own (``realworld.conftest``),
so it never shadows ``tests/conftest.py``, which test modules import as ``conftest``.
"""

collect_ignore_glob = ["*"]
