"""A batch of current data: read from CSV or Parquet and checked against the column specs.

A batch the comparison cannot use (unreadable, empty, too small, a model input missing or not a
number) raises BatchError. Values the schema refuses in an otherwise usable batch (new
categories, nulls where the schema allows none, values out of range) are data-quality problems:
reported, and counted as drift, since the champion was never validated on such values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.columns import FEATURE_NAMES, FEATURES, NUMERIC_FEATURES
from ..data.csv_files import check_table_suffix, read_table
from ..data.schema import features_schema, validate_frame
from ..errors import BatchError

if TYPE_CHECKING:
    from pathlib import Path

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class QualityProblem:
    """One failed value check of data/schema.py on one column of the batch."""

    column: str
    check: str
    count: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"{self.column}: {self.check} failed for {self.count} value(s), "
            f"e.g. {', '.join(self.examples)}"
        )


def read_batch(path: Path) -> pd.DataFrame:
    """The batch at `path` as read; BatchError when it is missing or cannot be parsed."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file (`make batch` or `make collect` writes one)")
    check_table_suffix(path)
    try:
        return read_table(path)
    # pandas' and pyarrow's parse errors (EmptyDataError, ParserError, ArrowInvalid) are
    # ValueErrors; a file that is not text fails to decode.
    except (ValueError, OSError) as error:
        raise BatchError(f"{path} cannot be read: {error}") from error


def usable_features(frame: pd.DataFrame, min_rows: int, source: str) -> pd.DataFrame:
    """The model inputs of `frame`, numeric columns as numbers; BatchError if it cannot be used.

    Extra columns (label, ids, timestamps) are dropped.
    """
    missing = [name for name in FEATURE_NAMES if name not in frame.columns]
    if missing:
        raise BatchError(
            f"{source}: model input column(s) missing: {', '.join(missing)} "
            f"(a batch holds the columns of data/columns.py: {', '.join(FEATURE_NAMES)})"
        )
    if len(frame) < min_rows:
        what = "is empty" if frame.empty else f"has {len(frame)} rows"
        raise BatchError(
            f"{source}: the batch {what}; drift needs at least {min_rows} (drift.min_rows)"
        )
    features = frame[list(FEATURE_NAMES)].copy()
    not_numbers: list[str] = []
    for name in NUMERIC_FEATURES:
        numbers = pd.to_numeric(features[name], errors="coerce")
        bad = features[name].notna() & numbers.isna()
        if bad.any():
            examples = ", ".join(features.loc[bad, name].astype(str).unique()[:MAX_EXAMPLES])
            not_numbers.append(f"{name} ({examples})")
        features[name] = numbers
    if not_numbers:
        raise BatchError(f"{source}: not numbers in numeric column(s): {'; '.join(not_numbers)}")
    return _whole_numbers_as_int(features)


def quality_problems(features: pd.DataFrame) -> list[QualityProblem]:
    """The value checks of the schema (categories, nulls, ranges) that the batch fails."""
    report = validate_frame(features, features_schema())
    # An integer column with a null cannot be int64: the null is the problem, reported by its
    # own not_nullable check, so the dtype failure it causes would only repeat it.
    explained = {
        name
        for name in _integer_columns()
        if features[name].isna().any() and _whole(features[name].dropna())
    }
    return [
        QualityProblem(failure.column, failure.check, failure.count, failure.examples)
        for failure in report.failures
        if not (failure.column in explained and failure.check.startswith("dtype("))
    ]


def _integer_columns() -> list[str]:
    return [spec.name for spec in FEATURES if spec.kind == "int"]


def _whole(values: pd.Series) -> bool:
    return bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))


def _whole_numbers_as_int(features: pd.DataFrame) -> pd.DataFrame:
    """CSV writers and JSON logs may turn 41 into 41.0: such an integer column is still fine."""
    for name in _integer_columns():
        column = features[name]
        if column.dtype.kind == "f" and column.notna().all() and _whole(column):
            features[name] = column.astype("int64")
    return features
