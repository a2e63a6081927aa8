"""The train/test split: deterministic; stratified on a classification label, random (seeded) for
a regression label."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DataValidationError
from .columns import LABEL, LabelSpec


def split_train_test(
    frame: pd.DataFrame, test_size: float, seed: int, label: LabelSpec | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same frame and seed, same split; for a classification label both parts keep the share of
    each class.

    A split scikit-learn cannot make (a class with one row, a test share leaving one side with
    fewer rows than classes, or no row at all) raises DataValidationError with the numbers
    behind it.
    """
    label = label or LABEL
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
        counts = frame[label.name].value_counts(dropna=False)
        classes = ", ".join(f"{value}: {count}" for value, count in counts.items())
        raise DataValidationError(
            f"cannot split {len(frame)} rows into train and test with data.test_size "
            f"{test_size}, keeping the share of each value of {label.name} ({classes}): {error}. "
            "Each value needs rows on both sides: use more data, or a data.test_size "
            "between 0.1 and 0.5"
        ) from error
    return train.reset_index(drop=True), test.reset_index(drop=True)
