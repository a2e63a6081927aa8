"""Feature preprocessing: the first step of the model pipeline, so serving applies it too."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .data.columns import CATEGORICAL_FEATURES, FEATURE_NAMES, LABEL, NUMERIC_FEATURES, binary_label


def build_preprocessor() -> ColumnTransformer:
    """Impute and scale numbers, impute and one-hot encode categories.

    Only the feature columns of columns.py are used: the protected attribute, the label and
    any extra column are dropped, so they can never leak into the model.
    """
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        # A category unseen in training (new in production) encodes as all zeros, not an error.
        OneHotEncoder(handle_unknown="ignore"),
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, list(NUMERIC_FEATURES)),
            ("categorical", categorical, list(CATEGORICAL_FEATURES)),
        ],
        remainder="drop",
    )


def split_features_label(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs (in the declared order) and the label as 0/1 (1: the positive value)."""
    return frame[list(FEATURE_NAMES)], binary_label(frame[LABEL.name])
