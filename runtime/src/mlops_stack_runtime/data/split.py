"""The train/test split (params `data.split`): deterministic, and of the kind the data needs.

random (the default): a seeded share, stratified on a classification label, random for a
regression label. group: the same share drawn by groups, so rows that belong together (one
person, one job ad) never sit on both sides. time: the latest rows held out, so the model is
tested on a period after the one it learned from.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from ..config import SplitSettings
from ..errors import DataValidationError
from .columns import LABEL, LabelSpec

RANDOM_SPLIT = SplitSettings()
# Values shown in a message about a column's values: the rest are counted.
SHOWN_VALUES = 3


def split_train_test(
    frame: pd.DataFrame,
    test_size: float,
    seed: int,
    label: LabelSpec | None = None,
    split: SplitSettings | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same frame, settings and seed, same split; every row on exactly one side.

    A split that cannot be made (a class with one row, a test share leaving one side empty or
    without a class, a grouping or time column missing, empty or unreadable) raises
    DataValidationError with the numbers behind it.
    """
    label = label or LABEL
    split = split or RANDOM_SPLIT
    if split.kind == "group":
        in_test = _group_test_rows(frame, test_size, seed, split)
    elif split.kind == "time":
        in_test = _time_test_rows(frame, test_size, split)
    else:
        return _random_split(frame, test_size, seed, label)
    train, test = frame[~in_test], frame[in_test]
    _check_classes(frame, train, test, label, split)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def describe_split(split: SplitSettings, test_size: float) -> str:
    """The split in words (the model card and the logs)."""
    if split.kind == "group":
        return (
            f"by groups of `{split.group_by}` (params `data.split`): about {test_size:.0%} of "
            "the groups held out for testing, no group on both sides"
        )
    if split.kind == "time":
        held_out = (
            f"rows at or after {split.cutoff}"
            if split.cutoff is not None
            else f"the latest {test_size:.0%} of rows"
        )
        return f"by time on `{split.time_column}` (params `data.split`): {held_out} held out"
    return ""


def _random_split(
    frame: pd.DataFrame, test_size: float, seed: int, label: LabelSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    stratify = frame[label.name] if label.is_classification else None
    try:
        train, test = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as error:
        if not label.is_classification:
            raise DataValidationError(
                f"cannot split {len(frame)} rows into train and test with data.test_size "
                f"{test_size}: {error}. Both sides need rows: use more data, or a "
                "data.test_size between 0.1 and 0.5"
            ) from error
        raise DataValidationError(
            f"cannot split {len(frame)} rows into train and test with data.test_size "
            f"{test_size}, keeping the share of each value of {label.name} "
            f"({_class_counts(frame, label)}): {error}. Each value needs rows on both sides: "
            "use more data, or a data.test_size between 0.1 and 0.5"
        ) from error
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _class_counts(frame: pd.DataFrame, label: LabelSpec) -> str:
    counts = frame[label.name].value_counts(dropna=False)
    return ", ".join(f"{value}: {count}" for value, count in counts.items())


def _column(frame: pd.DataFrame, name: str | None, key: str) -> pd.Series:
    """The column `key` names, complete: a missing column or empty values are refused."""
    if name not in frame.columns:
        raise DataValidationError(
            f"params.yaml: data.split.{key} is '{name}', which is not a column of the data "
            f"(its columns: {', '.join(map(str, frame.columns))})"
        )
    column = frame[name]
    empty = column.isna()
    if empty.any():
        raise DataValidationError(
            f"data.split.{key}: column '{name}' is empty in {int(empty.sum())} of {len(frame)} "
            f"rows (the first at row {_row_number(frame, empty)}); every row needs a value to be "
            "put on one side"
        )
    return column


def _row_number(frame: pd.DataFrame, where: pd.Series) -> int:
    """The data file's row number (1 the first data row) of the first row where `where` holds."""
    return int(np.flatnonzero(where.to_numpy())[0]) + 1


def _group_test_rows(
    frame: pd.DataFrame, test_size: float, seed: int, split: SplitSettings
) -> pd.Series:
    groups = _column(frame, split.group_by, "group_by")
    count = groups.nunique()
    if count < 2:
        raise DataValidationError(
            f"data.split.group_by: column '{split.group_by}' has {count} distinct value: a "
            "grouped split needs two groups or more (one for training, one for testing)"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    _, test_rows = next(splitter.split(frame, groups=groups.astype(str)))
    in_test = np.zeros(len(frame), dtype=bool)
    in_test[test_rows] = True
    return pd.Series(in_test, index=frame.index)


def _time_test_rows(frame: pd.DataFrame, test_size: float, split: SplitSettings) -> pd.Series:
    column = _column(frame, split.time_column, "time_column")
    times = _as_times(column, str(split.time_column))
    if split.cutoff is not None:
        cutoff = _cutoff(split.cutoff, times, str(split.time_column))
    else:
        # The latest test_size share; rows at the boundary's time all go to the test side.
        ordered = np.sort(times.to_numpy())
        cutoff = ordered[len(ordered) - max(1, math.ceil(len(ordered) * test_size))]
    in_test = times >= cutoff
    held_out = int(in_test.sum())
    if held_out in (0, len(frame)):
        side = "test" if held_out == 0 else "training"
        raise DataValidationError(
            f"data.split: no row is left for {side}: every value of '{split.time_column}' is "
            f"{'before' if held_out == 0 else 'at or after'} {_shown_time(cutoff)} "
            f"(from {_shown_time(times.min())} to {_shown_time(times.max())}); "
            + (
                "set data.split.cutoff inside that range"
                if split.cutoff is not None
                else "the column needs at least two distinct times"
            )
        )
    return in_test


def _as_times(column: pd.Series, name: str) -> pd.Series:
    """Numbers as they are (a year, a period), anything else read as dates and times (UTC)."""
    if pd.api.types.is_bool_dtype(column):
        raise DataValidationError(
            f"data.split.time_column: column '{name}' holds true/false values, not times"
        )
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    text = column.astype(str)
    times = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    unreadable = times.isna()
    if unreadable.any():
        examples = ", ".join(repr(v) for v in text[unreadable].unique()[:SHOWN_VALUES])
        raise DataValidationError(
            f"data.split.time_column: {int(unreadable.sum())} of {len(column)} values of "
            f"'{name}' are not dates or times (the first at row "
            f"{_row_number(column.to_frame(), unreadable)}: {examples}); write them as "
            "2024-01-31 or 2024-01-31T12:00, or as numbers"
        )
    return times


def _cutoff(value: str | float, times: pd.Series, name: str) -> object:
    """params `data.split.cutoff` in the time column's terms."""
    numeric = pd.api.types.is_numeric_dtype(times)
    if numeric:
        if isinstance(value, float):
            return value
        raise DataValidationError(
            f"data.split.cutoff is {value!r} but '{name}' holds numbers: give a number"
        )
    if isinstance(value, float):
        raise DataValidationError(
            f"data.split.cutoff is {value!r} but '{name}' holds dates and times: give a date "
            "(2024-01-31) or a time (2024-01-31T12:00)"
        )
    try:
        moment = pd.Timestamp(value)
    except ValueError:
        raise DataValidationError(
            f"data.split.cutoff is {value!r}, which is not a date or time: write it as "
            "2024-01-31 or 2024-01-31T12:00"
        ) from None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _shown_time(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _check_classes(
    frame: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    label: LabelSpec,
    split: SplitSettings,
) -> None:
    """A class the model never sees, or the test set lacks, makes the split useless."""
    if not label.is_classification:
        return
    classes = frame[label.name].dropna().unique()
    for side, part in (("training", train), ("test", test)):
        missing = sorted(str(value) for value in classes if not (part[label.name] == value).any())
        if missing:
            raise DataValidationError(
                f"data.split ({split.kind}) leaves no row of {label.name} = "
                f"{', '.join(missing)} in the {side} set ({len(train)} training rows, "
                f"{len(test)} test rows; {_class_counts(frame, label)}): "
                + (
                    "use another data.seed or data.test_size, or more groups"
                    if split.kind == "group"
                    else "move data.split.cutoff, or use data.test_size"
                )
            )
