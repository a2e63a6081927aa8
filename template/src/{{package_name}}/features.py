"""The model definition: the preprocessing in front of the estimator params.yaml names.

This file is yours: the runtime (mlops_stack_runtime) calls `build_preprocessor` when it trains,
and template updates never overwrite your edits. The fitted pipeline carries this step, so the
model server applies it too. Keep it convertible to ONNX (skl2onnx) for the fast serving path;
training records why when it is not, and serves the scikit-learn pipeline instead.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_stack_runtime.data.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES


def build_preprocessor(*, scale_numeric: bool = True) -> ColumnTransformer:
    """Impute (and, with ``scale_numeric``, scale) numbers, impute and one-hot encode categories.

    Only the feature columns of data/columns.yaml are used: the protected attribute, the label and
    any extra column are dropped, so they can never leak into the model.

    Tree models get ``scale_numeric=False``: a split does not care about scale, and a float64
    scaler in front of trees that compare float32 values would make the compiled model (ONNX,
    float32 throughout) disagree with scikit-learn on values near a split.
    """
    imputer = SimpleImputer(strategy="median")
    numeric = make_pipeline(imputer, StandardScaler()) if scale_numeric else make_pipeline(imputer)
    categorical = make_pipeline(
        # Missing categories (NaN here) take the most frequent value, a string: the ONNX export
        # (onnx_export.py) gives the compiled imputer a string marker for missing, since text
        # tensors have no NaN, and serving sends that marker for a missing category.
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
