from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.config import SplitSettings
from mlops_stack_runtime.data.columns import (
    LABEL,
    binary_label,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.split import (
    describe_split,
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


# --- grouped and time splits (params `data.split`) ----------------------------------------------

GROUP_SPLIT = SplitSettings(kind="group", group_by="household")


def households(frame: pd.DataFrame, size: int = 4) -> pd.DataFrame:
    """`frame` with a `household` column: `size` consecutive rows share one."""
    return frame.assign(household=[f"h{index // size}" for index in range(len(frame))])


def test_a_grouped_split_keeps_each_group_on_one_side(raw_frame: pd.DataFrame) -> None:
    frame = households(raw_frame)
    train, test = split_train_test(frame, test_size=0.25, seed=1, split=GROUP_SPLIT)
    assert not set(train["household"]) & set(test["household"])
    assert len(train) + len(test) == len(frame)
    groups = frame["household"].nunique()
    assert test["household"].nunique() == round(0.25 * groups)
    combined = pd.concat([train, test]).sort_values(list(frame.columns), ignore_index=True)
    pd.testing.assert_frame_equal(
        combined, frame.sort_values(list(frame.columns), ignore_index=True)
    )
    again = split_train_test(frame, test_size=0.25, seed=1, split=GROUP_SPLIT)
    pd.testing.assert_frame_equal(test, again[1])
    other = split_train_test(frame, test_size=0.25, seed=2, split=GROUP_SPLIT)
    assert set(other[1]["household"]) != set(test["household"])


def test_a_random_split_puts_groups_on_both_sides(raw_frame: pd.DataFrame) -> None:
    """What the grouped split prevents: the default split shares most households."""
    frame = households(raw_frame)
    train, test = split_train_test(frame, test_size=0.25, seed=1)
    assert len(set(train["household"]) & set(test["household"])) > test["household"].nunique() / 2


def test_a_grouped_split_names_a_missing_column(raw_frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError) as refused:
        split_train_test(raw_frame, test_size=0.2, seed=1, split=GROUP_SPLIT)
    assert str(refused.value) == (
        "params.yaml: data.split.group_by is 'household', which is not a column of the data "
        f"(its columns: {', '.join(raw_frame.columns)})"
    )


def test_a_grouped_split_refuses_rows_without_a_group(raw_frame: pd.DataFrame) -> None:
    frame = households(raw_frame)
    frame.loc[[6, 9], "household"] = None
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=GROUP_SPLIT)
    assert str(refused.value) == (
        f"data.split.group_by: column 'household' is empty in 2 of {len(frame)} rows (the "
        "first at row 7); every row needs a value to be put on one side"
    )


def test_a_grouped_split_needs_two_groups(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(household="all")
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=GROUP_SPLIT)
    assert str(refused.value).startswith(
        "data.split.group_by: column 'household' has 1 distinct value: a grouped split needs "
        "two groups or more"
    )


def test_a_grouped_split_that_leaves_a_class_out_is_explained(raw_frame: pd.DataFrame) -> None:
    """Every positive row in one household: one side has none."""
    frame = households(raw_frame)
    negative = next(value for value in LABEL.values if value != LABEL.positive)
    frame[LABEL.name] = negative
    frame.loc[frame["household"] == "h0", LABEL.name] = LABEL.positive
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=GROUP_SPLIT)
    message = str(refused.value)
    assert message.startswith(f"data.split (group) leaves no row of {LABEL.name} = ")
    assert f"{LABEL.positive}: 4" in message
    assert message.endswith("use another data.seed or data.test_size, or more groups")


def dated(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a `day` column: one day per row from 2024-01-01, in shuffled order."""
    days = pd.date_range("2024-01-01", periods=len(frame), freq="D").strftime("%Y-%m-%d")
    order = np.random.default_rng(0).permutation(len(frame))
    return frame.assign(day=days[order])


TIME_SPLIT = SplitSettings(kind="time", time_column="day")


def test_a_time_split_holds_out_the_latest_rows(raw_frame: pd.DataFrame) -> None:
    frame = dated(raw_frame)
    train, test = split_train_test(frame, test_size=0.2, seed=1, split=TIME_SPLIT)
    assert len(test) == math.ceil(0.2 * len(frame))
    assert train["day"].max() < test["day"].min()
    assert len(train) + len(test) == len(frame)
    # The seed plays no part: the latest rows are the latest rows.
    pd.testing.assert_frame_equal(
        test, split_train_test(frame, test_size=0.2, seed=2, split=TIME_SPLIT)[1]
    )


def test_rows_at_the_boundary_time_stay_together(raw_frame: pd.DataFrame) -> None:
    frame = dated(raw_frame)
    frame["day"] = frame["day"].str[:7]  # months: many rows share each
    frame["day"] = frame["day"] + "-01"
    train, test = split_train_test(frame, test_size=0.2, seed=1, split=TIME_SPLIT)
    assert not set(train["day"]) & set(test["day"])
    assert len(test) >= math.ceil(0.2 * len(frame))


def test_a_time_split_at_a_cutoff(raw_frame: pd.DataFrame) -> None:
    frame = dated(raw_frame)
    split = SplitSettings(kind="time", time_column="day", cutoff="2024-03-01")
    train, test = split_train_test(frame, test_size=0.2, seed=1, split=split)
    assert (test["day"] >= "2024-03-01").all() and (train["day"] < "2024-03-01").all()
    assert len(test) == (frame["day"] >= "2024-03-01").sum()


def test_a_time_split_on_numbers_and_on_times_with_zones(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(year=[2000 + index % 10 for index in range(len(raw_frame))])
    split = SplitSettings(kind="time", time_column="year", cutoff=2008)
    train, test = split_train_test(frame, test_size=0.2, seed=1, split=split)
    assert set(test["year"]) == {2008, 2009} and train["year"].max() == 2007
    # The same instant written in two zones is one time.
    zoned = raw_frame.head(5).assign(
        at=[
            "2024-01-01T10:00+00:00",
            "2024-01-01T12:00+02:00",
            "2024-01-01T09:00+00:00",
            "2024-01-01T11:00+00:00",
            "2024-01-01T08:00+00:00",
        ]
    )
    zoned[LABEL.name] = [*LABEL.values, *LABEL.values, LABEL.values[1]]
    split = SplitSettings(kind="time", time_column="at", cutoff="2024-01-01T10:00Z")
    _, test = split_train_test(zoned, test_size=0.2, seed=1, split=split, label=None)
    assert list(test["at"]) == [
        "2024-01-01T10:00+00:00",
        "2024-01-01T12:00+02:00",
        "2024-01-01T11:00+00:00",
    ]


def test_a_time_split_names_unreadable_times(raw_frame: pd.DataFrame) -> None:
    frame = dated(raw_frame)
    frame.loc[4, "day"] = "soon"
    frame.loc[8, "day"] = "later"
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=TIME_SPLIT)
    assert str(refused.value) == (
        f"data.split.time_column: 2 of {len(frame)} values of 'day' are not dates or times "
        "(the first at row 5: 'soon', 'later'); write them as 2024-01-31 or 2024-01-31T12:00, "
        "or as numbers"
    )


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (
            "2030-01-01",
            "data.split: no row is left for test: every value of 'day' is before "
            "2030-01-01T00:00:00+00:00",
        ),
        (
            "2000-01-01",
            "data.split: no row is left for training: every value of 'day' is at or after "
            "2000-01-01T00:00:00+00:00",
        ),
        ("next spring", "data.split.cutoff is 'next spring', which is not a date or time"),
        (2024.0, "data.split.cutoff is 2024.0 but 'day' holds dates and times: give a date"),
    ],
)
def test_a_cutoff_that_splits_nothing_is_explained(
    raw_frame: pd.DataFrame, cutoff: str | float, expected: str
) -> None:
    split = SplitSettings(kind="time", time_column="day", cutoff=cutoff)
    with pytest.raises(DataValidationError) as refused:
        split_train_test(dated(raw_frame), test_size=0.2, seed=1, split=split)
    assert str(refused.value).startswith(expected)


def test_a_number_column_needs_a_number_cutoff(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(year=2000)
    split = SplitSettings(kind="time", time_column="year", cutoff="2024-01-01")
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=split)
    assert str(refused.value) == (
        "data.split.cutoff is '2024-01-01' but 'year' holds numbers: give a number"
    )


def test_one_time_for_every_row_leaves_nothing_to_train_on(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(day="2024-01-01")
    with pytest.raises(DataValidationError) as refused:
        split_train_test(frame, test_size=0.2, seed=1, split=TIME_SPLIT)
    assert str(refused.value).endswith("the column needs at least two distinct times")


def test_a_regression_label_splits_by_time_without_class_checks() -> None:
    declaration = task_declarations.regression()
    frame = generate_sample(n_rows=100, seed=3, declaration=declaration)
    frame["step"] = range(len(frame))
    split = SplitSettings(kind="time", time_column="step")
    train, test = split_train_test(
        frame, test_size=0.3, seed=1, label=declaration.label, split=split
    )
    assert list(test["step"]) == list(range(70, 100)) and len(train) == 70


def test_the_split_in_words() -> None:
    assert describe_split(SplitSettings(), 0.2) == ""
    assert describe_split(GROUP_SPLIT, 0.2) == (
        "by groups of `household` (params `data.split`): about 20% of the groups held out for "
        "testing, no group on both sides"
    )
    assert describe_split(TIME_SPLIT, 0.25) == (
        "by time on `day` (params `data.split`): the latest 25% of rows held out"
    )
    at = SplitSettings(kind="time", time_column="day", cutoff="2024-03-01")
    assert describe_split(at, 0.25) == (
        "by time on `day` (params `data.split`): rows at or after 2024-03-01 held out"
    )
