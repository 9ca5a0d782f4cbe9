"""The Collector's own checks, on top of what storage and the model do."""

from __future__ import annotations

import pytest

from debugtrace import Collector, InvalidTrace, StorageError


def test_a_bad_cursor_is_refused_not_ignored(collector: Collector) -> None:
    with pytest.raises(InvalidTrace, match="cursor"):
        collector.traces(cursor="garbage; DROP TABLE traces")


def test_a_limit_out_of_range_is_refused(collector: Collector) -> None:
    with pytest.raises(InvalidTrace, match="limit"):
        collector.traces(limit=0)


def test_a_missing_database_driver_is_a_storage_error(collector: Collector) -> None:
    c = Collector(database_url="mysql://u@127.0.0.1/x", settings=collector.settings)
    with pytest.raises(StorageError, match="driver"):
        _ = c.storage


def test_public_functions_and_classes_say_what_they_do() -> None:
    import inspect

    import debugtrace

    missing = []
    for name in debugtrace.__all__:
        obj = getattr(debugtrace, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("debugtrace"):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert missing == []
