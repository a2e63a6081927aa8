"""serving/validation.py's own helpers: how a message names what a client sent. The requests
themselves, valid and not, are tests/serving/test_server.py's."""

from __future__ import annotations

import pytest

from mlops_stack_runtime.serving.validation import shown_names


@pytest.mark.parametrize(
    ("count", "suffix"),
    [(1, ""), (20, ""), (21, " and 1 more"), (45, " and 25 more")],
)
def test_at_most_twenty_names_are_listed_then_how_many_more(count: int, suffix: str) -> None:
    names = [f"c{i}" for i in range(count)]
    listed = ", ".join(f'"{name}"' for name in names[:20])
    assert shown_names(names) == listed + suffix
