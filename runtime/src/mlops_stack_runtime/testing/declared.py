"""Columns the tests pick from the declaration (data/columns.yaml), whatever data it describes.

A test asks for a kind of column ("a numeric feature with a range", "a category feature"), not
for a column of one dataset, so the suite follows the data the project adopted. When the
declaration has no column of that kind, the test (or just that parametrized case) is skipped
with a reason naming what is missing, never silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from mlops_stack_runtime.data.columns import (
    FEATURES,
    ColumnSpec,
)

Predicate = Callable[[ColumnSpec], bool]


def is_int(spec: ColumnSpec) -> bool:
    return spec.kind == "int"


def is_float(spec: ColumnSpec) -> bool:
    return spec.kind == "float"


def is_numeric(spec: ColumnSpec) -> bool:
    return spec.kind != "category"


def is_category(spec: ColumnSpec) -> bool:
    return spec.kind == "category"


def is_bounded(spec: ColumnSpec) -> bool:
    """A number with a min or a max: a value outside them fails the range check."""
    return is_numeric(spec) and (spec.min_value is not None or spec.max_value is not None)


def is_nullable(spec: ColumnSpec) -> bool:
    return spec.nullable


def is_required(spec: ColumnSpec) -> bool:
    return not spec.nullable


def both(first: Predicate, second: Predicate) -> Predicate:
    return lambda spec: first(spec) and second(spec)


def first_feature(predicate: Predicate) -> ColumnSpec | None:
    """The first declared feature of the kind, or None."""
    return next((spec for spec in FEATURES if predicate(spec)), None)


def missing_reason(what: str) -> str:
    return f"columns.yaml declares no {what}"


def pick(predicate: Predicate, what: str) -> ColumnSpec:
    """The first declared feature of the kind; the test is skipped when there is none."""
    spec = first_feature(predicate)
    if spec is None:
        pytest.skip(missing_reason(what))
    return spec


def case(predicate: Predicate, what: str, *values: Any, id: str) -> Any:
    """A parametrized case `(spec, *values)` on the first feature of the kind, skipped (with the
    reason) when the declaration has none."""
    spec = first_feature(predicate)
    return pytest.param(
        spec,
        *values,
        id=id,
        marks=pytest.mark.skipif(spec is None, reason=missing_reason(what)),
    )


def range_check(spec: ColumnSpec) -> str:
    """The name pandera gives the range check of a bounded column (data/schema.py)."""
    if spec.min_value is not None and spec.max_value is not None:
        return f"in_range({spec.min_value}, {spec.max_value})"
    if spec.min_value is not None:
        return f"greater_than_or_equal_to({spec.min_value})"
    return f"less_than_or_equal_to({spec.max_value})"


def _typed(spec: ColumnSpec, value: float) -> int | float:
    return int(value) if spec.kind == "int" else float(value)


def above_max(spec: ColumnSpec) -> int | float | None:
    """A value of the column's type just above its max (None without a max)."""
    if spec.max_value is None:
        return None
    return _typed(spec, math.floor(spec.max_value) + 1)


def below_min(spec: ColumnSpec) -> int | float | None:
    """A value of the column's type just below its min (None without a min)."""
    if spec.min_value is None:
        return None
    return _typed(spec, math.ceil(spec.min_value) - 1)


def out_of_range(spec: ColumnSpec) -> int | float:
    """A value of a bounded column that its range check refuses."""
    value = above_max(spec)
    if value is None:
        value = below_min(spec)
    assert value is not None, f"{spec.name} has no range"
    return value


def unknown_category(spec: ColumnSpec) -> str:
    """A text that is not one of the column's categories."""
    value = "undeclared_value"
    while value in spec.categories:
        value += "_"
    return value


def undeclared_code(spec: ColumnSpec) -> int:
    """A whole number whose text is not one of the column's categories."""
    code = 987_654
    while str(code) in spec.categories:
        code += 1
    return code


def in_range_middle(spec: ColumnSpec) -> int | float:
    """A valid value of a numeric column (the middle of its range)."""
    low = spec.min_value if spec.min_value is not None else 0.0
    high = spec.max_value if spec.max_value is not None else low + 100.0
    return _typed(spec, round((low + high) / 2) if spec.kind == "int" else (low + high) / 2)
