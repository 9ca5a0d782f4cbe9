"""How the dashboard writes a bug's title and a cost (``server/dashboard/text.py``)."""

from __future__ import annotations

import pytest

from debugtrace.server.dashboard.text import bug_title, is_cost_key, money


@pytest.mark.parametrize(
    ("description", "title"),
    [
        # The first line that says something, without Markdown's markers.
        ("## `sort()` drops **duplicate** keys\n\nDetails...", "sort() drops duplicate keys"),
        ("# Title #\nbody", "Title"),
        ("---\n```\n\n> **Bug:** crash on `None`", "Bug: crash on None"),
        ("- [x] fix _this_ and *that*", "fix this and that"),
        ("1. ~~old~~ new", "old new"),
        # Links and images become their text; autolinks their address.
        ("See [#812](https://github.com/o/r/issues/812) and ![logo](x.png)", "See #812 and logo"),
        ("Reported at <https://example.com/a>", "Reported at https://example.com/a"),
        # Identifiers keep their underscores and stars; HTML stays text (the page escapes it).
        ("test_divide_by_zero fails for a*b*c", "test_divide_by_zero fails for a*b*c"),
        ("window.__pwned = 1 <img src=x>", "window.__pwned = 1 <img src=x>"),
        # Python's dunders stay, in code spans or not; a fence's language line is no title.
        ("`__init__` ignores kwargs", "__init__ ignores kwargs"),
        ("__init__ ignores **kwargs** and Foo.__eq__", "__init__ ignores kwargs and Foo.__eq__"),
        ("```python\nparse('1.0') returns None", "parse('1.0') returns None"),
        ("  spaced\tout  ", "spaced out"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_title_is_the_first_line_as_plain_text(description: str | None, title: str) -> None:
    assert bug_title(description) == title


def test_a_long_title_ends_in_an_ellipsis() -> None:
    assert bug_title("word " * 50, width=20) == "word word word word…"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.019520000000000006, "$0.02"),
        (0.004, "<$0.01"),
        (0.0, "$0.00"),
        (3, "$3.00"),
        (1234.5, "$1,234.50"),
        (float("nan"), "nan"),
        (-1.0, "-1.0"),
        ("n/a", "n/a"),
        (True, "True"),
    ],
)
def test_a_cost_is_money(value: object, shown: str) -> None:
    assert money(value) == shown


def test_cost_keys() -> None:
    for key in ("cost", "Cost", "total_cost", "accumulated_cost", "cost_usd", "total_cost_usd"):
        assert is_cost_key(key), key
    for key in ("costume", "api_calls", "model"):
        assert not is_cost_key(key), key
