"""The train/test split: deterministic, stratified on the label."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from .columns import LABEL


def split_train_test(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same frame and seed, same split; both parts keep the label's class balance."""
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[LABEL.name]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
