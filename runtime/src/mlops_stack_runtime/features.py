"""The model's inputs and label, and the preprocessing the repository defines.

The preprocessing (imputation, scaling, encoding) is the team's: `build_preprocessor` of the
project's `features.py` (project.py finds the package). It is the first step of the fitted
pipeline, so the model server applies it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .data.columns import FEATURE_NAMES, LABEL, encode_label
from .errors import ConfigError
from .project import current_project

if TYPE_CHECKING:
    import pandas as pd

MODEL_DEFINITION = "features"


def build_preprocessor(*, scale_numeric: bool = True) -> Any:
    """The project's preprocessing step (`<package>/features.py: build_preprocessor`).

    Tree models ask for ``scale_numeric=False``: a split does not care about scale, and a float64
    scaler in front of trees that compare float32 values would make the compiled model (ONNX,
    float32 throughout) disagree with scikit-learn on values near a split.
    """
    project = current_project()
    definition = project.module(MODEL_DEFINITION)
    build = getattr(definition, "build_preprocessor", None)
    if not callable(build):
        raise ConfigError(
            f"{project.package}/{MODEL_DEFINITION}.py must define "
            "build_preprocessor(scale_numeric: bool) returning a scikit-learn transformer"
        )
    return build(scale_numeric=scale_numeric)


def split_features_label(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs (in the declared order) and the label as the model learns it (binary 0/1 with
    1 the positive value, multi-class the class index, regression the value: tasks.py)."""
    return frame[list(FEATURE_NAMES)], encode_label(frame[LABEL.name])
