"""The train/test split: deterministic, stratified on the label."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DataValidationError
from .columns import LABEL


def split_train_test(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same frame and seed, same split; both parts keep the label's class balance.

    A split scikit-learn cannot make (a class with one row, a test share leaving one side with
    fewer rows than classes) raises DataValidationError with the numbers behind it.
    """
    try:
        train, test = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=frame[LABEL.name]
        )
    except ValueError as error:
        counts = frame[LABEL.name].value_counts(dropna=False)
        classes = ", ".join(f"{value}: {count}" for value, count in counts.items())
        raise DataValidationError(
            f"cannot split {len(frame)} rows into train and test with data.test_size "
            f"{test_size}, keeping the share of each value of {LABEL.name} ({classes}): {error}. "
            "Each value needs rows on both sides: use more data, or a data.test_size "
            "between 0.1 and 0.5"
        ) from error
    return train.reset_index(drop=True), test.reset_index(drop=True)
