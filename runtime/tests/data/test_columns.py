"""The label as the model learns it, per task (data/columns.py `encode_label`, `class_names`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    class_names,
    encode_label,
    load_declaration,
    parse_declaration,
)
from mlops_stack_runtime.errors import ConfigError

from . import task_declarations


def test_a_multiclass_label_becomes_class_indices_and_keeps_its_name() -> None:
    label = task_declarations.text_classes().label
    series = pd.Series(["virginica", "setosa", "versicolor", "setosa"], name=label.name)
    encoded = encode_label(series, label)
    assert encoded.name == label.name
    assert list(encoded) == [label.classes.index(v) for v in series]
    assert list(class_names(encoded, label)) == list(series)


def test_integer_coded_classes_are_matched_as_text() -> None:
    label = task_declarations.integer_classes().label
    encoded = encode_label(pd.Series([2, 0, 1.0], name="target"), label)
    assert list(encoded) == [label.classes.index("2"), label.classes.index("0"), 1]
    # A value that is no class cannot pass for one.
    assert list(encode_label(pd.Series([7]), label)) == [-1]


def test_a_regression_label_stays_a_number_with_its_name() -> None:
    label = task_declarations.regression().label
    encoded = encode_label(pd.Series(["151", 75.5], name=label.name), label)
    assert encoded.name == label.name
    assert encoded.dtype == np.float64
    assert list(encoded) == [151.0, 75.5]


def test_a_binary_label_is_one_for_its_positive_value() -> None:
    label = load_declaration().label
    series = pd.Series([label.positive, label.negative], name=label.name)
    assert list(encode_label(series, label)) == [1, 0]
    assert label.classes == (label.negative, label.positive)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ({"name": "y", "task": "ordinal", "values": [1, 2, 3]}, "'task' must be one of"),
        ({"name": "y", "task": "multiclass", "values": ["a", "b"]}, "three or more classes"),
        ({"name": "y", "task": "multiclass", "values": ["a", "b", "a"]}, "must be distinct"),
        ({"name": "y", "task": "regression", "values": ["a"]}, "has no 'values'"),
        ({"name": "y", "task": "regression", "min": 5, "max": 1}, "'min' 5 is above 'max' 1"),
        ({"name": "y", "task": "multiclass", "values": [1, 2, 3], "positive": 1}, "binary"),
    ],
)
def test_a_label_that_contradicts_its_task_is_refused(label: dict, message: str) -> None:
    content = {"label": label, "features": [{"name": "x", "kind": "float"}]}
    with pytest.raises(ConfigError, match=message):
        parse_declaration(content)


def test_a_label_without_a_task_reads_as_before() -> None:
    features = [{"name": "x", "kind": "float"}]
    binary = parse_declaration(
        {"label": {"name": "y", "values": [0, 1], "positive": 1}, "features": features}
    )
    assert binary.label.task == "binary"
    several = parse_declaration(
        {"label": {"name": "y", "values": ["a", "b", "c"]}, "features": features}
    )
    assert several.label.task == "multiclass"
