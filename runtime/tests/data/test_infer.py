"""use-data's inference of the label's task (infer_label.py) and of the declaration (infer.py),
on scikit-learn's datasets (no download) and on small frames for each refusal."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_iris, load_wine

from mlops_stack_runtime.data.columns import ColumnSpec, declaration_to_yaml, parse_declaration
from mlops_stack_runtime.data.infer import infer_declaration
from mlops_stack_runtime.data.infer_label import infer_label, min_rows_per_class
from mlops_stack_runtime.errors import DataSourceError


def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def iris() -> pd.DataFrame:
    """Iris with the species' names as the label: a text multi-class label."""
    data = load_iris(as_frame=True)
    frame = data.frame.copy()
    frame["target"] = data.target_names[data.target]
    return frame


def frame_with(label: list[object] | pd.Series) -> pd.DataFrame:
    """A feature that cannot leak anything beside `label`."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=len(label)), "y": label})


def refusal(frame: pd.DataFrame, **options: object) -> str:
    with pytest.raises(DataSourceError) as refused:
        infer_declaration(frame, "y", **options)  # type: ignore[arg-type]
    return str(refused.value)


# --- the task from the label's values ------------------------------------------------------------


def test_many_whole_numbers_make_a_regression_label_with_its_range() -> None:
    inference = infer_declaration(diabetes(), "target")
    label = inference.declaration.label
    assert label.task == "regression"
    assert (label.min_value, label.max_value) == (25, 346)
    assert label.values == () and label.positive is None
    assert inference.task_rule.startswith("regression: ")
    assert "214 distinct values, more than 10 (params.yaml data.max_category_levels)" in (
        inference.task_rule
    )
    row = inference.summaries[0]
    assert (row.name, row.role, row.kind, row.detail) == (
        "target",
        "label",
        "regression",
        "25 .. 346",
    )
    assert inference.label_counts == {} and inference.labelled_rows == 442
    assert inference.warnings == ()  # no feature of the diabetes data gives the target away


def test_numbers_that_are_not_whole_make_a_regression_label() -> None:
    frame = frame_with([0.5, 1.25, 3.0, 2.0] * 5)
    inference = infer_declaration(frame, "y")
    assert inference.declaration.label.task == "regression"
    assert "numbers that are not all whole" in inference.task_rule
    assert (inference.declaration.label.min_value, inference.declaration.label.max_value) == (
        0.5,
        3,
    )


def test_the_regression_declaration_reads_back_the_same() -> None:
    declaration = infer_declaration(diabetes(), "target").declaration
    again = parse_declaration(yaml.safe_load(declaration_to_yaml(declaration)))
    assert again.label == declaration.label


def test_a_text_label_with_three_values_is_multiclass_in_natural_order() -> None:
    inference = infer_declaration(iris(), "target")
    label = inference.declaration.label
    assert label.task == "multiclass"
    assert label.classes == ("setosa", "versicolor", "virginica")
    assert "holds text with 3 distinct values (3 to 50, params.yaml data.max_classes" in (
        inference.task_rule
    )
    row = inference.summaries[0]
    assert row.kind == "multiclass"
    assert row.detail == "3 classes: setosa: 50, versicolor: 50, virginica: 50"
    assert inference.label_counts == {"setosa": 50, "versicolor": 50, "virginica": 50}


def test_classes_sort_naturally_as_categories_do() -> None:
    frame = frame_with(["10", "2", "1", "b", "a"] * 6)
    assert infer_declaration(frame, "y").declaration.label.classes == ("1", "2", "10", "a", "b")


def test_true_false_with_missing_values_stays_binary() -> None:
    frame = frame_with([True, False, None] * 10)
    label = infer_declaration(frame, "y").declaration.label
    assert (label.task, label.positive, label.values) == ("binary", "true", ("false", "true"))


def test_integer_codes_with_few_values_are_ambiguous() -> None:
    message = refusal(wine().rename(columns={"target": "y"}))
    assert "label 'y' holds whole numbers with 3 distinct values" in message
    assert "0 (59 rows), 1 (71 rows), 2 (48 rows)" in message
    assert "TASK=multiclass" in message and "TASK=regression" in message


def test_integer_codes_given_task_multiclass_make_classes() -> None:
    inference = infer_declaration(wine(), "target", task="multiclass")
    label = inference.declaration.label
    assert (label.task, label.classes) == ("multiclass", ("0", "1", "2"))
    assert inference.task_rule == "multiclass: given by TASK=multiclass (3 classes)"


def test_integer_codes_given_task_regression_make_a_number() -> None:
    label = infer_declaration(wine(), "target", task="regression").declaration.label
    assert (label.task, label.min_value, label.max_value) == ("regression", 0, 2)


def test_two_values_given_task_regression_are_a_number() -> None:
    label = infer_label(pd.Series([0, 1] * 10), "y", task="regression").spec
    assert label.task == "regression"


def test_max_category_levels_moves_the_line_between_ambiguous_and_regression() -> None:
    frame = wine().rename(columns={"target": "y"})
    label = infer_declaration(frame, "y", max_category_levels=2).declaration.label
    assert label.task == "regression"


# --- refusals: each names the column and why ----------------------------------------------------


def test_a_single_value_is_refused() -> None:
    message = refusal(frame_with(["a"] * 10 + [None] * 2))
    assert message == (
        "label 'y' has a single value (a in all 10 labelled rows): there is nothing to predict"
    )


def test_a_label_missing_in_every_row_is_refused() -> None:
    assert "label 'y' has no values" in refusal(frame_with([None] * 10))


def test_a_missing_label_column_is_refused() -> None:
    with pytest.raises(DataSourceError, match=r"label \(LABEL\) 'nope' is not a column"):
        infer_declaration(iris(), "nope")


def test_too_many_classes_say_how_many_and_the_setting() -> None:
    frame = frame_with([f"c{i}" for i in range(5)] * 6)
    message = refusal(frame, max_classes=4)
    assert "label 'y' has 5 distinct values: too many classes" in message
    assert "at most 4, params.yaml data.max_classes" in message
    assert "TASK=regression" not in message  # text is no number to predict
    assert infer_declaration(frame, "y", max_classes=5).declaration.label.task == "multiclass"


def test_too_many_integer_classes_given_multiclass_point_at_regression() -> None:
    message = refusal(frame_with(list(range(6)) * 6), task="multiclass", max_classes=5)
    assert "6 distinct values: too many classes" in message
    assert "a number to predict is TASK=regression" in message


def test_a_class_with_one_row_is_refused() -> None:
    message = refusal(frame_with(["a"] * 10 + ["b"] * 10 + ["c"]))
    assert "label 'y' has too few rows of c (1 rows)" in message
    assert "at least 5 rows" in message and "data.test_size 0.2" in message


def test_a_binary_class_with_too_few_rows_is_refused() -> None:
    assert "too few rows of 1 (2 rows)" in refusal(frame_with([0] * 20 + [1] * 2))


@pytest.mark.parametrize(("test_size", "needed"), [(0.2, 5), (0.3, 4), (0.5, 2), (0.8, 5)])
def test_the_rows_a_class_needs_follow_the_test_size(test_size: float, needed: int) -> None:
    assert min_rows_per_class(test_size) == needed
    short = frame_with(["a"] * 20 + ["b"] * 20 + ["c"] * (needed - 1))
    assert f"at least {needed} rows" in refusal(short, test_size=test_size)
    enough = frame_with(["a"] * 20 + ["b"] * 20 + ["c"] * needed)
    assert infer_declaration(enough, "y", test_size=test_size).declaration.label.task == (
        "multiclass"
    )


def test_text_given_task_regression_is_refused() -> None:
    message = refusal(iris().rename(columns={"target": "y"}), task="regression")
    assert message.startswith("TASK=regression needs a numeric label; label 'y' holds text: ")
    assert "setosa (50 rows)" in message


def test_true_false_given_task_regression_is_refused() -> None:
    assert "holds true/false values" in refusal(frame_with([True, False] * 5), task="regression")


def test_task_binary_needs_two_values() -> None:
    message = refusal(iris().rename(columns={"target": "y"}), task="binary")
    assert "TASK=binary needs a label with exactly two distinct values; label 'y' has 3" in message


def test_task_binary_with_a_positive_class_still_needs_exactly_two_values() -> None:
    message = refusal(frame_with(["a", "b", "c"] * 10), task="binary", positive="a")
    assert message.startswith("TASK=binary needs a label with exactly two distinct values")
    assert "label 'y' has 3: a (10 rows), b (10 rows), c (10 rows)" in message


def test_task_multiclass_needs_three_values() -> None:
    message = refusal(frame_with(["a", "b"] * 10), task="multiclass")
    assert "TASK=multiclass needs a label with 3 to 50 distinct values; label 'y' has 2" in message
    assert "two values make TASK=binary" in message


def test_an_unknown_task_is_refused() -> None:
    assert "TASK=ordinal is not a task" in refusal(frame_with(["a", "b"] * 10), task="ordinal")


@pytest.mark.parametrize("task", [None, "multiclass"])
def test_positive_with_a_multiclass_label_is_refused(task: str | None) -> None:
    message = refusal(iris().rename(columns={"target": "y"}), positive="setosa", task=task)
    assert message.startswith(
        "POSITIVE=setosa names the positive class of a binary label, but label 'y' is multiclass"
    )


def test_positive_with_a_regression_label_is_refused() -> None:
    message = refusal(diabetes().rename(columns={"target": "y"}), positive="25")
    assert "but label 'y' is regression" in message


def test_an_infinite_regression_label_is_refused() -> None:
    message = refusal(frame_with([0.5, 1.5, np.inf, 2.5] * 5))
    assert "label 'y' has 5 infinite value(s)" in message


# --- binary as before ----------------------------------------------------------------------------


def test_a_zero_one_label_is_binary_with_positive_one() -> None:
    inference = infer_declaration(frame_with([0, 1] * 10), "y")
    label = inference.declaration.label
    assert (label.task, label.values, label.positive) == ("binary", ("0", "1"), "1")
    assert inference.summaries[0].detail == "0: 10, 1: 10 (positive 1)"
    assert inference.summaries[0].kind == "binary"


def test_a_text_binary_label_still_needs_positive() -> None:
    frame = frame_with(["no", "yes"] * 10)
    assert refusal(frame) == (
        "label 'y' has the values no and yes: say which is the positive class with POSITIVE=<value>"
    )
    assert infer_declaration(frame, "y", positive="yes").declaration.label.positive == "yes"
    assert "POSITIVE=maybe is not a value of label 'y' (no, yes)" in refusal(
        frame, positive="maybe"
    )


# --- notes: a feature that gives the label away -------------------------------------------------


def notes_of(frame: pd.DataFrame, label: str, **options: object) -> dict[str, tuple[str, ...]]:
    inference = infer_declaration(frame, label, **options)  # type: ignore[arg-type]
    return {row.name: row.notes for row in inference.summaries if row.notes}


def test_a_number_that_separates_a_binary_label_is_noted() -> None:
    frame = frame_with([0, 1] * 20)
    frame["leak"] = frame["y"] * 10 + np.arange(40) / 100
    notes = notes_of(frame, "y")
    assert list(notes) == ["leak"]
    assert notes["leak"][0].startswith("separates the label almost perfectly (ROC AUC 1.000)")


def test_a_number_that_puts_each_class_in_its_own_range_is_noted() -> None:
    frame = iris()
    codes = frame["target"].map({"setosa": 0, "versicolor": 1, "virginica": 2})
    frame["leak"] = codes * 10 + np.linspace(0, 5, len(frame))
    notes = notes_of(frame, "target")
    assert notes == {"leak": ("puts each class in a range of its own: it may leak the label",)}


def test_a_category_equal_to_a_multiclass_label_is_noted() -> None:
    frame = iris()
    frame["copy"] = frame["target"].str.upper()
    notes = notes_of(frame, "target")
    assert notes == {"copy": ("each value has a single label value: it may leak the label",)}


def test_a_function_of_a_regression_label_is_noted() -> None:
    frame = diabetes()
    frame["linear"] = frame["target"] * 2 + 1
    frame["monotonic"] = np.log(frame["target"])
    notes = notes_of(frame, "target")
    assert set(notes) == {"linear", "monotonic"}
    assert notes["linear"][0] == (
        "moves with the label almost exactly (correlation 1.000): it may leak the label"
    )


def test_many_classes_are_summarised_in_the_table() -> None:
    frame = frame_with([f"c{i:02d}" for i in range(20)] * 5)
    detail = infer_declaration(frame, "y").summaries[0].detail
    assert detail.startswith("20 classes: c00: 5, c01: 5, ")
    assert "c11: 5 ..." in detail and "c12" not in detail


# --- features and the protected attribute ----------------------------------------------------

PROTECTED_DESCRIPTION = "Protected attribute (not a model input)"


def frame_of(**columns: list[object]) -> pd.DataFrame:
    """Forty rows of `columns` beside a binary label no column is tied to (20 of each value)."""
    rng = np.random.default_rng(1)
    label = rng.permutation(["no", "yes"] * 20)
    frame = pd.DataFrame({"x": rng.normal(size=40), **columns})
    frame["y"] = label
    return frame


def test_a_text_feature_keeps_its_gaps_and_lists_numbers_first_in_numeric_order() -> None:
    frame = frame_of(code=["10", "9", "x", None] * 10)
    declared = infer_declaration(frame, "y", positive="yes").declaration
    (code,) = [spec for spec in declared.features if spec.name == "code"]
    assert (code.kind, code.nullable, code.categories) == ("category", True, ("9", "10", "x"))


@pytest.mark.parametrize(
    ("values", "nullable", "categories"),
    [
        (["b", "a", None, "a"] * 10, True, ("a", "b")),
        ([3, 1, 2, np.nan, 10] * 8, True, ("1", "2", "3", "10")),
        ([3, 1, 2, 10] * 10, False, ("1", "2", "3", "10")),
        # More values than data.max_category_levels: a number as a feature, groups as protected.
        ([*range(9, 21), np.nan, np.nan] * 2 + [9] * 12, True, tuple(map(str, range(9, 21)))),
    ],
    ids=["text-with-gaps", "numbers-with-gaps", "numbers", "a-number-of-many-values"],
)
def test_a_protected_attribute_is_grouped_on_its_values_whatever_their_type(
    values: list[object], nullable: bool, categories: tuple[str, ...]
) -> None:
    inference = infer_declaration(frame_of(group=values), "y", positive="yes", protected="group")
    declared = inference.declaration
    assert declared.protected_attribute == ColumnSpec(
        "group", "category", PROTECTED_DESCRIPTION, nullable, categories=categories
    )
    assert "group" not in [spec.name for spec in declared.features]
    assert [s.role for s in inference.summaries if s.name == "group"] == ["protected attribute"]


def leak_note(auc: float) -> str:
    return f"separates the label almost perfectly (ROC AUC {auc:.3f}): it may leak the label"


@pytest.mark.parametrize(
    ("misordered", "direction", "note"),
    [(0, 1, leak_note(1.0)), (1, 1, leak_note(0.99)), (1, -1, leak_note(0.99)), (2, 1, None)],
    ids=["perfect", "auc-0.99", "auc-0.01", "auc-0.98"],
)
def test_a_number_that_separates_a_binary_label_is_noted_from_a_roc_auc_of_0_99(
    misordered: int, direction: int, note: str | None
) -> None:
    """Ten negatives at 0..9 and ten positives above them, but for the lowest positives placed
    below `misordered` negatives (of the 100 pairs); a score turned around counts the same."""
    negatives = list(range(10))
    positives = [9.5 - misordered, *range(11, 20)]
    frame = pd.DataFrame(
        {
            "leak": [direction * v for v in negatives + positives],
            "x": np.random.default_rng(0).normal(size=20),
            "y": [0] * 10 + [1] * 10,
        }
    )
    warnings = infer_declaration(frame, "y", task="binary").warnings
    leak = [w for w in warnings if w.startswith("leak: separates")]
    assert leak == ([f"leak: {note}"] if note else [])


def test_a_number_present_for_one_positive_row_that_tops_every_negative_is_noted() -> None:
    leak = [float(i) for i in range(10)] + [99.0] + [np.nan] * 9
    x = np.random.default_rng(0).normal(size=20)
    frame = pd.DataFrame({"leak": leak, "x": x, "y": [0] * 10 + [1] * 10})
    warnings = infer_declaration(frame, "y", task="binary").warnings
    assert f"leak: {leak_note(1.0)}" in warnings


@pytest.mark.parametrize(("classes", "suffix"), [(10, ""), (12, " and 2 more")])
def test_a_refusal_lists_ten_values_in_numeric_order_then_how_many_more(
    classes: int, suffix: str
) -> None:
    message = refusal(frame_with(list(range(1, classes + 1)) * 6), task="multiclass", max_classes=9)
    listed = ", ".join(f"{value} (6 rows)" for value in range(1, 11))
    assert message.endswith(
        f"params.yaml data.max_classes): {listed}{suffix}; a number to predict is TASK=regression"
    )


def test_categories_given_task_regression_are_refused_naming_them() -> None:
    frame = frame_with(pd.Series(pd.Categorical(["low", "high", "mid"] * 10)))
    message = refusal(frame, task="regression")
    assert "TASK=regression needs a numeric label; label 'y' holds categories: " in message


def test_a_whole_number_range_is_written_as_whole_numbers() -> None:
    text = declaration_to_yaml(infer_declaration(diabetes(), "target").declaration)
    label = yaml.safe_load(text)["label"]
    assert (label["min"], label["max"]) == (25, 346)
    assert "min: 25\n" in text and "max: 346\n" in text


@pytest.mark.parametrize("present_for", [0, 1], ids=["negatives-only", "positives-only"])
def test_a_number_present_for_one_class_only_is_no_leak_note_nor_a_warning(
    present_for: int,
) -> None:
    """No ROC AUC exists without both classes: nothing is computed (numpy would print a
    division warning into use-data's output) and nothing is noted."""
    y = [0] * 15 + [1] * 15
    sparse = [float(i) if label == present_for else np.nan for i, label in enumerate(y)]
    frame = pd.DataFrame({"sparse": sparse, "x": np.random.default_rng(0).normal(size=30), "y": y})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference = infer_declaration(frame, "y", task="binary")
    assert inference.warnings == ()
