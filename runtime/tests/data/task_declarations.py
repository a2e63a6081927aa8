"""The declarations `use-data` writes for scikit-learn's datasets, one per task (no download):
diabetes (regression, whole numbers 25 to 346), wine given TASK=multiclass (integer codes 0, 1,
2) and iris with the species' names (text classes)."""

from __future__ import annotations

from functools import cache

import pandas as pd
from sklearn.datasets import load_diabetes, load_iris, load_wine

from mlops_stack_runtime.data.columns import Declaration
from mlops_stack_runtime.data.infer import infer_declaration


def iris_frame() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.copy()
    frame["target"] = data.target_names[data.target]
    return frame


@cache
def regression() -> Declaration:
    return infer_declaration(load_diabetes(as_frame=True).frame, "target").declaration


@cache
def integer_classes() -> Declaration:
    frame = load_wine(as_frame=True).frame
    return infer_declaration(frame, "target", task="multiclass").declaration


@cache
def text_classes() -> Declaration:
    return infer_declaration(iris_frame(), "target").declaration
