"""The label of a dataset and the task it makes: what `use-data` declares for the column to predict.

The task follows the label's values, unless TASK= names it:
- exactly two values: binary (POSITIVE names the positive class, unless the values are 0/1 or
  false/true);
- text, true/false or category values, 3 to `max_classes` of them: multi-class, the classes in
  natural order ("2" before "10");
- numbers that are not all whole, or whole numbers with more than `max_category_levels` distinct
  values: regression;
- whole numbers with 3 to `max_category_levels` distinct values: classes coded as numbers, or a
  count to predict? Refused until TASK= says which.
A task given with TASK= is checked against the values all the same. Every refusal names the
column and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataSourceError
from .columns import TASKS, LabelSpec, TaskKind, as_category

# Values conventionally meaning the positive class, when POSITIVE is not given.
CONVENTIONAL_POSITIVE = ({"0", "1"}, "1"), ({"false", "true"}, "true")
# How many of a label's values a refusal shows, and the summary table (as for categories).
SHOWN_VALUES = 10
SHOWN_CLASSES = 12


@dataclass(frozen=True)
class LabelInference:
    spec: LabelSpec
    # Rows of each class, classes in declaration order (binary: sorted); empty for regression.
    counts: dict[str, int]
    labelled_rows: int
    # The rule that decided the task, in words (use-data prints it).
    rule: str
    # The label's cell of the summary table: its classes and their rows, or its range.
    detail: str


def natural(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order before text: "2" before "10"."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def min_rows_per_class(test_size: float) -> int:
    """Rows a class needs for the stratified split to put at least one in train and in test."""
    smaller_side = min(test_size, 1 - test_size)
    if smaller_side <= 0:
        return 2
    # The tolerance keeps 1 / 0.2 at 5, not 6 by a rounding error.
    return max(2, math.ceil(1 / smaller_side - 1e-9))


def infer_label(
    series: pd.Series,
    name: str,
    positive: str | None = None,
    task: str | None = None,
    max_classes: int = 50,
    max_category_levels: int = 10,
    test_size: float = 0.2,
) -> LabelInference:
    """The label's declaration and the rule that chose its task; DataSourceError naming the
    column and the reason when it cannot be a label (of the task given)."""
    if task is not None and task not in TASKS:
        raise DataSourceError(f"TASK={task} is not a task: it is one of {', '.join(TASKS)}")
    text = as_category(series)
    counts = {str(k): int(v) for k, v in text.value_counts(dropna=True).sort_index().items()}
    labelled = int(text.notna().sum())
    if not counts:
        raise DataSourceError(f"label '{name}' has no values: it is missing in every row")
    if len(counts) == 1:
        (value, rows), *_ = counts.items()
        raise DataSourceError(
            f"label '{name}' has a single value ({value} in all {rows} labelled rows): "
            "there is nothing to predict"
        )
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    chosen, rule = _task(series, name, counts, numeric, task, max_classes, max_category_levels)
    if positive is not None and chosen != "binary":
        raise DataSourceError(
            f"POSITIVE={positive} names the positive class of a binary label, but label "
            f"'{name}' is {chosen} ({rule}): leave POSITIVE out"
        )
    if chosen == "regression":
        return _regression(series, name, labelled, rule)
    _check_rows_per_class(name, counts, test_size)
    if chosen == "binary":
        spec = _binary(name, tuple(counts), positive)
        detail = ", ".join(f"{value}: {count}" for value, count in counts.items())
        return LabelInference(spec, counts, labelled, rule, f"{detail} (positive {spec.positive})")
    classes = tuple(sorted(counts, key=natural))
    ordered = {value: counts[value] for value in classes}
    described = ", ".join(classes) if len(classes) <= SHOWN_VALUES else f"{len(classes)} classes"
    spec = LabelSpec(name, f"one of {described}", classes, None, "multiclass")
    shown = [f"{value}: {rows}" for value, rows in ordered.items()]
    detail = f"{len(classes)} classes: " + ", ".join(shown[:SHOWN_CLASSES])
    detail += " ..." if len(shown) > SHOWN_CLASSES else ""
    return LabelInference(spec, ordered, labelled, rule, detail)


def _task(
    series: pd.Series,
    name: str,
    counts: dict[str, int],
    numeric: bool,
    task: str | None,
    max_classes: int,
    max_levels: int,
) -> tuple[TaskKind, str]:
    """The task and the rule that chose it, or DataSourceError."""
    n = len(counts)
    if task == "binary":
        if n != 2:
            raise DataSourceError(
                f"TASK=binary needs a label with exactly two distinct values; label '{name}' "
                f"has {n}: {_shown(counts)}"
            )
        return "binary", "given by TASK=binary"
    if task == "multiclass":
        if n < 3:
            raise DataSourceError(
                f"TASK=multiclass needs a label with 3 to {max_classes} distinct values; label "
                f"'{name}' has {n}: {_shown(counts)} (two values make TASK=binary)"
            )
        _check_max_classes(name, counts, max_classes, numeric)
        return "multiclass", f"given by TASK=multiclass ({n} classes)"
    if task == "regression":
        if not numeric:
            raise DataSourceError(
                f"TASK=regression needs a numeric label; label '{name}' holds "
                f"{_kind_of_values(series)}: {_shown(counts)}"
            )
        return "regression", "given by TASK=regression"
    if n == 2:
        return "binary", f"label '{name}' has two values (TASK= overrides the inference)"
    if not numeric:
        _check_max_classes(name, counts, max_classes, numeric)
        return "multiclass", (
            f"label '{name}' holds {_kind_of_values(series)} with {n} distinct values (3 to "
            f"{max_classes}, params.yaml data.max_classes, make a multi-class label); TASK= "
            "overrides the inference"
        )
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
    if not np.all(np.mod(values[np.isfinite(values)], 1) == 0):
        return "regression", (
            f"label '{name}' holds numbers that are not all whole; TASK= overrides the inference"
        )
    if n > max_levels:
        return "regression", (
            f"label '{name}' holds whole numbers with {n} distinct values, more than "
            f"{max_levels} (params.yaml data.max_category_levels); TASK= overrides the inference"
        )
    raise DataSourceError(
        f"label '{name}' holds whole numbers with {n} distinct values ({_shown(counts)}): are "
        "they classes coded as numbers, or a number to predict? Say which with TASK=multiclass "
        "or TASK=regression"
    )


def _kind_of_values(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "true/false values"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categories"
    return "text"


def _check_max_classes(name: str, counts: dict[str, int], max_classes: int, numeric: bool) -> None:
    if len(counts) <= max_classes:
        return
    hint = "; a number to predict is TASK=regression" if numeric else ""
    raise DataSourceError(
        f"label '{name}' has {len(counts)} distinct values: too many classes for a multi-class "
        f"label (at most {max_classes}, params.yaml data.max_classes): {_shown(counts)}{hint}"
    )


def _check_rows_per_class(name: str, counts: dict[str, int], test_size: float) -> None:
    needed = min_rows_per_class(test_size)
    short = {value: rows for value, rows in counts.items() if rows < needed}
    if short:
        shown = ", ".join(f"{value} ({rows} rows)" for value, rows in list(short.items())[:10])
        raise DataSourceError(
            f"label '{name}' has too few rows of {shown}: each class needs at least {needed} "
            f"rows for the split (data.test_size {test_size}) to put one in both train and "
            "test; add rows of that class, or leave those rows out of the file"
        )


def _binary(name: str, found: tuple[str, ...], positive: str | None) -> LabelSpec:
    if positive is None:
        chosen = next((p for values_, p in CONVENTIONAL_POSITIVE if set(found) == values_), None)
        if chosen is None:
            raise DataSourceError(
                f"label '{name}' has the values {found[0]} and {found[1]}: say which is the "
                "positive class with POSITIVE=<value>"
            )
    else:
        chosen = as_category(pd.Series([positive])).iloc[0]
        if chosen not in found:
            raise DataSourceError(
                f"POSITIVE={positive} is not a value of label '{name}' ({found[0]}, {found[1]})"
            )
    negative = next(value for value in found if value != chosen)
    description = f"{chosen} (positive) or {negative}"
    return LabelSpec(name, description, (negative, chosen), chosen)


def _regression(series: pd.Series, name: str, labelled: int, rule: str) -> LabelInference:
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
    infinite = int((~np.isfinite(values)).sum())
    if infinite:
        raise DataSourceError(
            f"label '{name}' has {infinite} infinite value(s): a number to predict is finite"
        )
    low, high = _number(values.min()), _number(values.max())
    description = f"a number ({low:g} to {high:g} in the adopted data)"
    spec = LabelSpec(name, description, (), None, "regression", low, high)
    return LabelInference(spec, {}, labelled, rule, f"{low:g} .. {high:g}")


def _number(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else value


def _shown(counts: dict[str, int]) -> str:
    items = sorted(counts.items(), key=lambda item: natural(item[0]))
    shown = ", ".join(f"{value} ({count} rows)" for value, count in items[:SHOWN_VALUES])
    more = f" and {len(items) - SHOWN_VALUES} more" if len(items) > SHOWN_VALUES else ""
    return f"{shown}{more}"
