from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    LABEL,
    PROTECTED_ATTRIBUTE,
    ColumnSpec,
    Declaration,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.schema import (
    FINITE_CHECK_NAME,
    LABEL_CHECK_NAME,
    LABEL_CHECK_NAMES,
    ValidationReport,
    features_schema,
    validate_frame,
)
from mlops_stack_runtime.testing.declared import (
    above_max,
    below_min,
    both,
    is_bounded,
    is_category,
    is_float,
    is_int,
    is_nullable,
    is_required,
    out_of_range,
    pick,
    range_check,
    unknown_category,
)

from . import task_declarations


def reread(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """Round-trip through CSV: the validate stage sees the dtypes a file reads back with."""
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return read_frame(path, declared_columns=False)


def failed_checks(report: ValidationReport) -> set[tuple[str, str]]:
    return {(failure.column, failure.check) for failure in report.failures}


def test_good_data_passes(raw_frame: pd.DataFrame, tmp_path: Path) -> None:
    report = validate_frame(reread(raw_frame, tmp_path))
    assert report.passed
    assert report.failures == ()
    assert report.to_text().startswith("data validation passed")


def test_wrong_type_fails(raw_frame: pd.DataFrame, tmp_path: Path) -> None:
    name = pick(is_int, "int feature").name
    frame = raw_frame.astype({name: object})
    frame.loc[3, name] = "forty"
    report = validate_frame(reread(frame, tmp_path))
    # Only the dtype failure: the range check cannot run on text and must not add noise.
    assert failed_checks(report) == {(name, "dtype('int64')")}
    assert report.failures[0].examples == ("forty",)


def test_text_in_a_float_column_fails_coercion(raw_frame: pd.DataFrame, tmp_path: Path) -> None:
    name = pick(is_float, "float feature").name
    frame = raw_frame.astype({name: object})
    frame.loc[0, name] = "a lot"
    report = validate_frame(reread(frame, tmp_path))
    assert (name, "coerce_dtype('float64')") in failed_checks(report)


def holds_whole_numbers(spec: ColumnSpec) -> bool:
    if spec.min_value is None or spec.max_value is None:
        return True
    return math.ceil(spec.min_value) <= math.floor(spec.max_value)


def test_integers_in_a_float_column_pass(raw_frame: pd.DataFrame) -> None:
    spec = pick(both(is_float, holds_whole_numbers), "float feature whose range holds an integer")
    frame = raw_frame.dropna(subset=[spec.name])
    whole = np.ceil(frame[spec.name])
    if spec.max_value is not None:
        whole = whole.clip(upper=math.floor(spec.max_value))
    frame = frame.assign(**{spec.name: whole.astype("int64")})
    assert frame[spec.name].dtype == np.int64
    assert validate_frame(frame).passed


def test_out_of_range_fails(raw_frame: pd.DataFrame) -> None:
    spec = pick(is_bounded, "numeric feature with a min or a max")
    # Below the min and above the max where both are declared, else two values past the one.
    high, low = above_max(spec), below_min(spec)
    values = [high, low] if high is not None and low is not None else [out_of_range(spec)] * 2
    if values[0] == values[1]:
        values[1] += 1 if high is not None else -1
    frame = raw_frame.copy()
    frame.loc[[0, 1], spec.name] = values
    report = validate_frame(frame)
    (failure,) = report.failures
    assert (failure.column, failure.check) == (spec.name, range_check(spec))
    assert failure.count == 2
    assert set(failure.examples) == {str(value) for value in values}


def test_null_in_non_nullable_column_fails(raw_frame: pd.DataFrame) -> None:
    name = pick(is_required, "non-nullable feature").name
    frame = raw_frame.copy()
    frame.loc[5, name] = np.nan
    assert (name, "not_nullable") in failed_checks(validate_frame(frame))


def test_null_in_nullable_column_passes(raw_frame: pd.DataFrame) -> None:
    name = pick(is_nullable, "nullable feature").name
    frame = raw_frame.copy()
    frame.loc[:10, name] = np.nan
    assert frame[name].isna().sum() >= 11
    assert validate_frame(frame).passed


def test_unknown_category_fails(raw_frame: pd.DataFrame) -> None:
    spec = pick(is_category, "category feature")
    value = unknown_category(spec)
    frame = raw_frame.copy()
    frame.loc[7, spec.name] = value
    report = validate_frame(frame)
    (failure,) = report.failures
    assert failure.column == spec.name
    assert failure.check.startswith("isin(")
    assert failure.examples == (value,)


def test_missing_label_column_fails(raw_frame: pd.DataFrame) -> None:
    report = validate_frame(raw_frame.drop(columns=[LABEL.name]))
    assert failed_checks(report) == {(LABEL.name, "column_in_dataframe")}
    assert f"{LABEL.name}: column is missing" in report.to_text()


def test_constant_label_fails(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(**{LABEL.name: LABEL.positive})
    report = validate_frame(frame)
    assert failed_checks(report) == {(LABEL.name, LABEL_CHECK_NAME)}


def test_label_outside_its_two_values_fails(raw_frame: pd.DataFrame) -> None:
    other = unknown_category(LABEL.as_column())
    frame = raw_frame.copy()
    frame.loc[0, LABEL.name] = other
    report = validate_frame(frame)
    assert failed_checks(report) == {(LABEL.name, f"isin({list(LABEL.values)!r})")}
    assert report.failures[0].examples == (other,)


def test_all_failures_are_reported_at_once(raw_frame: pd.DataFrame) -> None:
    bounded = pick(is_bounded, "numeric feature with a min or a max")
    category = pick(is_category, "category feature")
    # The protected attribute is required as much as the label; without one, the label goes.
    dropped = PROTECTED_ATTRIBUTE.name if PROTECTED_ATTRIBUTE is not None else LABEL.name
    value = out_of_range(bounded)
    frame = raw_frame.drop(columns=[dropped])
    frame.loc[0, bounded.name] = value
    frame.loc[1, category.name] = unknown_category(category)
    report = validate_frame(frame)
    assert {column for column, _ in failed_checks(report)} == {
        dropped,
        bounded.name,
        category.name,
    }
    assert not report.passed
    text = report.to_text()
    assert "3 check(s) failed" in text
    check = range_check(bounded)
    assert f"{bounded.name}: check {check} failed for 1 value(s), e.g. {value}" in text


def test_report_serialises_to_json(raw_frame: pd.DataFrame, tmp_path: Path) -> None:
    spec = pick(is_bounded, "numeric feature with a min or a max")
    value = out_of_range(spec)
    frame = raw_frame.copy()
    frame.loc[0, spec.name] = value
    path = validate_frame(frame).write_json(tmp_path / "reports" / "validation.json")
    content = json.loads(path.read_text())
    assert content["passed"] is False
    assert content["n_rows"] == len(frame)
    assert content["failures"] == [
        {"column": spec.name, "check": range_check(spec), "count": 1, "examples": [str(value)]}
    ]


def test_features_schema_needs_no_label_nor_protected_attribute(raw_frame: pd.DataFrame) -> None:
    features = raw_frame[list(FEATURE_NAMES)]
    assert validate_frame(features, features_schema()).passed
    assert not validate_frame(features).passed


@pytest.mark.parametrize("column", FEATURE_NAMES)
def test_features_schema_requires_every_feature(raw_frame: pd.DataFrame, column: str) -> None:
    report = validate_frame(raw_frame.drop(columns=[column]), features_schema())
    assert failed_checks(report) == {(column, "column_in_dataframe")}


# --- the label of every task -------------------------------------------------------------------

TASK_DECLARATIONS = {
    "regression": task_declarations.regression,
    "integer-classes": task_declarations.integer_classes,
    "text-classes": task_declarations.text_classes,
}


@pytest.fixture(params=list(TASK_DECLARATIONS))
def declared(request: pytest.FixtureRequest) -> tuple[Declaration, pd.DataFrame]:
    """A declaration of another task and rows generated from it."""
    declaration = TASK_DECLARATIONS[request.param]()
    return declaration, generate_sample(n_rows=200, seed=4, declaration=declaration)


def test_rows_of_every_task_pass_after_a_csv_round_trip(
    declared: tuple[Declaration, pd.DataFrame], tmp_path: Path
) -> None:
    declaration, frame = declared
    report = validate_frame(reread(frame, tmp_path), declaration=declaration)
    assert report.passed, report.to_text()


def test_a_constant_label_of_every_task_fails_naming_the_label(
    declared: tuple[Declaration, pd.DataFrame],
) -> None:
    declaration, frame = declared
    label = declaration.label
    frame[label.name] = frame[label.name].iloc[0]
    report = validate_frame(frame, declaration=declaration)
    assert failed_checks(report) == {(label.name, LABEL_CHECK_NAMES[label.task])}


def test_a_class_that_is_not_declared_fails() -> None:
    declaration = task_declarations.text_classes()
    label = declaration.label
    frame = generate_sample(n_rows=50, seed=4, declaration=declaration)
    frame.loc[3, label.name] = "dandelion"
    report = validate_frame(frame, declaration=declaration)
    assert failed_checks(report) == {(label.name, f"isin({list(label.classes)!r})")}
    assert report.failures[0].examples == ("dandelion",)


def test_integer_classes_are_compared_as_their_text() -> None:
    declaration = task_declarations.integer_classes()
    label = declaration.label
    frame = generate_sample(n_rows=50, seed=4, declaration=declaration)
    codes = frame.assign(**{label.name: frame[label.name].astype(int)})
    assert validate_frame(codes, declaration=declaration).passed
    codes.loc[0, label.name] = 3
    report = validate_frame(codes, declaration=declaration)
    assert failed_checks(report) == {(label.name, "isin(['0', '1', '2'])")}


@pytest.mark.parametrize(
    ("value", "check"),
    [
        (np.inf, FINITE_CHECK_NAME),
        (-np.inf, FINITE_CHECK_NAME),
        (347.5, "in_range(25, 346)"),
        (24, "in_range(25, 346)"),
    ],
)
def test_a_regression_label_is_a_finite_number_in_its_range(value: float, check: str) -> None:
    declaration = task_declarations.regression()
    label = declaration.label
    frame = generate_sample(n_rows=50, seed=4, declaration=declaration)
    frame.loc[2, label.name] = value
    report = validate_frame(frame, declaration=declaration)
    assert (label.name, check) in failed_checks(report)
    assert {column for column, _ in failed_checks(report)} == {label.name}


def test_text_in_a_regression_label_fails(tmp_path: Path) -> None:
    declaration = task_declarations.regression()
    label = declaration.label
    frame = generate_sample(n_rows=50, seed=4, declaration=declaration).astype({label.name: object})
    frame.loc[0, label.name] = "high"
    report = validate_frame(reread(frame, tmp_path), declaration=declaration)
    assert (label.name, "coerce_dtype('float64')") in failed_checks(report)


def test_a_missing_regression_label_is_reported() -> None:
    declaration = task_declarations.regression()
    label = declaration.label
    frame = generate_sample(n_rows=50, seed=4, declaration=declaration)
    report = validate_frame(frame.drop(columns=[label.name]), declaration=declaration)
    assert failed_checks(report) == {(label.name, "column_in_dataframe")}
