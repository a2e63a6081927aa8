from __future__ import annotations

import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    LABEL,
    binary_label,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.split import (
    split_train_test,
)
from mlops_stack_runtime.errors import (
    DataValidationError,
)

from . import task_declarations


def test_split_is_deterministic(raw_frame: pd.DataFrame) -> None:
    first = split_train_test(raw_frame, test_size=0.2, seed=1)
    second = split_train_test(raw_frame, test_size=0.2, seed=1)
    for part, again in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(part, again)


def test_another_seed_gives_another_split(raw_frame: pd.DataFrame) -> None:
    _, test_one = split_train_test(raw_frame, test_size=0.2, seed=1)
    _, test_two = split_train_test(raw_frame, test_size=0.2, seed=2)
    assert not test_one.equals(test_two)


@pytest.mark.parametrize("test_size", [0.2, 0.3])
def test_sizes_and_no_row_lost_or_shared(raw_frame: pd.DataFrame, test_size: float) -> None:
    train, test = split_train_test(raw_frame, test_size=test_size, seed=1)
    assert len(test) == pytest.approx(test_size * len(raw_frame), abs=1)
    assert len(train) + len(test) == len(raw_frame)
    combined = pd.concat([train, test]).sort_values(list(raw_frame.columns), ignore_index=True)
    expected = raw_frame.sort_values(list(raw_frame.columns), ignore_index=True)
    pd.testing.assert_frame_equal(combined, expected)


def test_split_keeps_the_label_balance(raw_frame: pd.DataFrame) -> None:
    train, test = split_train_test(raw_frame, test_size=0.2, seed=1)
    overall = binary_label(raw_frame[LABEL.name]).mean()
    assert 0 < overall < 1
    assert binary_label(train[LABEL.name]).mean() == pytest.approx(overall, abs=0.01)
    assert binary_label(test[LABEL.name]).mean() == pytest.approx(overall, abs=0.01)


@pytest.mark.parametrize("case", ["one-positive-row", "test-size-too-large"])
def test_a_split_scikit_learn_cannot_make_is_explained(raw_frame: pd.DataFrame, case: str) -> None:
    frame, test_size = raw_frame.copy(), 0.2
    negative = next(value for value in LABEL.values if value != LABEL.positive)
    if case == "one-positive-row":
        frame[LABEL.name] = negative
        frame.loc[0, LABEL.name] = LABEL.positive
    else:
        test_size = 1 - 1 / len(frame)  # one training row for two classes
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=test_size, seed=1)
    message = str(refused.value)
    assert f"cannot split {len(frame)} rows" in message
    assert f"data.test_size {test_size}" in message
    if case == "one-positive-row":
        assert f"{LABEL.positive}: 1" in message


# --- every task --------------------------------------------------------------------------------


def test_a_multiclass_split_keeps_each_class_share() -> None:
    declaration = task_declarations.integer_classes()
    label = declaration.label
    frame = generate_sample(n_rows=900, seed=3, declaration=declaration)
    train, test = split_train_test(frame, test_size=0.2, seed=1, label=label)
    overall = frame[label.name].value_counts(normalize=True)
    assert set(overall.index) == set(label.classes)
    for part in (train, test):
        shares = part[label.name].value_counts(normalize=True)
        pd.testing.assert_series_equal(
            shares.sort_index(), overall.sort_index(), atol=0.01, check_names=False
        )


def test_a_multiclass_class_with_one_row_is_explained() -> None:
    declaration = task_declarations.text_classes()
    label = declaration.label
    frame = generate_sample(n_rows=300, seed=3, declaration=declaration)
    rare = label.classes[-1]
    frame[label.name] = frame[label.name].replace(rare, label.classes[0])
    frame.loc[0, label.name] = rare
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, label=label)
    assert f"keeping the share of each value of {label.name}" in str(refused.value)
    assert f"{rare}: 1" in str(refused.value)


def test_a_regression_split_is_random_and_seeded() -> None:
    declaration = task_declarations.regression()
    label = declaration.label
    frame = generate_sample(n_rows=500, seed=3, declaration=declaration)
    # Every value once: no stratified split could be made of it.
    assert frame[label.name].nunique() == len(frame)
    train, test = split_train_test(frame, test_size=0.2, seed=1, label=label)
    assert (len(train), len(test)) == (400, 100)
    again = split_train_test(frame, test_size=0.2, seed=1, label=label)
    pd.testing.assert_frame_equal(test, again[1])
    other = split_train_test(frame, test_size=0.2, seed=2, label=label)
    assert not test.equals(other[1])
    assert sorted([*train[label.name], *test[label.name]]) == sorted(frame[label.name])


def test_a_regression_split_scikit_learn_cannot_make_is_explained() -> None:
    declaration = task_declarations.regression()
    frame = generate_sample(n_rows=1, seed=3, declaration=declaration)
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, label=declaration.label)
    message = str(refused.value)
    assert message.startswith("cannot split 1 rows into train and test with data.test_size 0.2: ")
    assert "keeping the share" not in message and "Both sides need rows" in message
