"""The `sample` source's label for every task: what the tests of a repository train on after
`use-data` adopted a regression or multi-class dataset."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_stack_runtime.data.columns import Declaration, LabelSpec, encode_label
from mlops_stack_runtime.data.sample import generate_sample
from mlops_stack_runtime.data.split import split_train_test

from . import task_declarations


def learnt(declaration: Declaration, frame: pd.DataFrame) -> float:
    """Held-out macro F1 (classes) or R² (regression) of a linear model fitted on the frame (the
    declarations of task_declarations have numeric features only)."""
    label = declaration.label
    train, test = split_train_test(frame, test_size=0.25, seed=1, label=label)

    def features(part: pd.DataFrame) -> pd.DataFrame:
        return part[list(declaration.feature_names)].apply(pd.to_numeric, errors="coerce")

    if label.is_classification:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        classifier.fit(features(train), encode_label(train[label.name], label))
        predicted = classifier.predict(features(test))
        return float(f1_score(encode_label(test[label.name], label), predicted, average="macro"))
    regressor = make_pipeline(StandardScaler(), Ridge()).fit(features(train), train[label.name])
    return float(r2_score(test[label.name], regressor.predict(features(test))))


@pytest.mark.parametrize(
    "declared", [task_declarations.integer_classes, task_declarations.text_classes]
)
def test_every_class_comes_in_equal_shares_and_follows_the_features(
    declared: Callable[[], Declaration],
) -> None:
    declaration = declared()
    label = declaration.label
    frame = generate_sample(n_rows=900, seed=3, declaration=declaration)
    counts = frame[label.name].value_counts()
    assert set(counts.index) == set(label.classes)
    assert counts.max() - counts.min() <= 1
    assert learnt(declaration, frame) > 0.45  # a most-frequent guess scores about 1/6


def test_a_regression_label_is_a_number_in_its_range_that_follows_the_features() -> None:
    declaration = task_declarations.regression()
    label = declaration.label
    frame = generate_sample(n_rows=900, seed=3, declaration=declaration)
    values = frame[label.name]
    assert values.dtype == np.float64 and values.notna().all()
    assert label.min_value <= values.min() < values.max() <= label.max_value
    assert values.std() > 0.15 * (label.max_value - label.min_value)
    assert learnt(declaration, frame) > 0.3


@pytest.mark.parametrize(
    ("low", "high", "within"), [(None, None, (0, 100)), (None, 5, (-95, 5)), (10, None, (10, 110))]
)
def test_a_regression_label_without_a_full_range_spans_a_hundred(
    low: float | None, high: float | None, within: tuple[float, float]
) -> None:
    base = task_declarations.regression()
    label = LabelSpec(base.label.name, "", (), None, "regression", low, high)
    declaration = Declaration(base.features, label)
    values = generate_sample(n_rows=500, seed=1, declaration=declaration)[label.name]
    assert within[0] <= values.min() < values.max() <= within[1]
    assert values.max() - values.min() > 50


def test_same_seed_same_label_for_every_task() -> None:
    for declared in (task_declarations.regression, task_declarations.text_classes):
        declaration = declared()
        first = generate_sample(n_rows=100, seed=9, declaration=declaration)
        pd.testing.assert_frame_equal(first, generate_sample(100, 9, declaration=declaration))
