"""Data contracts as pandera schemas, derived from the column specs of columns.py.

`raw_schema` checks a whole dataset (features, protected attribute, label); `features_schema`
checks model inputs only (what the model server receives). The label follows its task: a class
label is one of its classes, a regression label a finite number (within its declared range).
`validate_frame` collects every failure at once into a report that names the column, the check
and offending values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from .columns import (
    DECLARATION,
    FEATURES,
    LABEL,
    ColumnSpec,
    Declaration,
    LabelSpec,
    apply_declared_types,
)

# The dataset-level check that the label can be learnt from: two values or more, per task.
LABEL_CHECK_NAMES = {
    "binary": "label_has_both_classes",
    "multiclass": "label_has_two_classes_or_more",
    "regression": "label_is_not_constant",
}
LABEL_CHECK_NAME = LABEL_CHECK_NAMES["binary"]
FINITE_CHECK_NAME = "finite"
MAX_EXAMPLES = 5


def column_schema(spec: ColumnSpec, extra: tuple[pa.Check, ...] = ()) -> pa.Column:
    """A pandera column with the dtype, range, nullability and categories of the spec (and the
    `extra` checks)."""
    checks: list[pa.Check] = list(extra)
    if spec.categories:
        checks.append(pa.Check.isin(list(spec.categories)))
    if spec.min_value is not None and spec.max_value is not None:
        checks.append(pa.Check.in_range(spec.min_value, spec.max_value))
    elif spec.min_value is not None:
        checks.append(pa.Check.ge(spec.min_value))
    elif spec.max_value is not None:
        checks.append(pa.Check.le(spec.max_value))
    dtype = {"int": "int64", "float": "float64", "category": str}[spec.kind]
    return pa.Column(
        dtype,
        checks=checks,
        nullable=spec.nullable,
        # Integers in a float column are fine (CSV writers drop ".0"); ints stay strict so that
        # a fractional age or term is reported rather than silently truncated.
        coerce=spec.kind == "float",
        description=spec.description,
    )


def features_schema() -> pa.DataFrameSchema:
    """Model inputs only; extra columns (ids, timestamps) are allowed and ignored."""
    return pa.DataFrameSchema({spec.name: column_schema(spec) for spec in FEATURES})


def label_schema(label: LabelSpec) -> pa.Column:
    """The label's column: one of its classes, or (regression) a finite number in its range."""
    if label.task != "regression":
        return column_schema(label.as_column())
    finite = pa.Check(lambda values: np.isfinite(values), name=FINITE_CHECK_NAME)
    return column_schema(label.as_column(), (finite,))


def raw_schema(declaration: Declaration = DECLARATION) -> pa.DataFrameSchema:
    """A full dataset: features, protected attribute (if declared) and a label that can be
    learnt from (binary: both values; multi-class: two classes or more; regression: not
    constant)."""
    label = declaration.label
    columns = {spec.name: column_schema(spec) for spec in declaration.all_columns}
    columns[label.name] = label_schema(label)
    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(
                lambda frame: _label_varies(frame, label.name),
                name=LABEL_CHECK_NAMES[label.task],
                statistics={"label": label.name},
            )
        ],
    )


def _label_varies(frame: pd.DataFrame, label: str) -> bool:
    # A missing label is reported by its own column check; this one covers a constant label,
    # on which no model can be trained or evaluated.
    return label not in frame or frame[label].nunique(dropna=True) >= 2


@dataclass(frozen=True)
class CheckFailure:
    column: str
    check: str
    count: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        if self.check == "column_in_dataframe":
            return f"{self.column}: column is missing (check {self.check})"
        examples = ", ".join(self.examples)
        return (
            f"{self.column}: check {self.check} failed for {self.count} value(s), e.g. {examples}"
        )


@dataclass(frozen=True)
class ValidationReport:
    n_rows: int
    n_columns: int
    failures: tuple[CheckFailure, ...]
    # The checks before training (checks.py), when the data passed: to read, not failures.
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "failures": [asdict(failure) for failure in self.failures],
            "warnings": list(self.warnings),
        }

    def to_text(self) -> str:
        if self.passed:
            lines = [f"data validation passed: {self.n_rows} rows, {self.n_columns} columns"]
            if self.warnings:
                lines.append("before trusting the model, look at:")
                lines += [f"  - {warning}" for warning in self.warnings]
            return "\n".join(lines)
        lines = [f"data validation failed: {len(self.failures)} check(s) failed"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def validate_frame(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema | None = None,
    declaration: Declaration | None = None,
) -> ValidationReport:
    """Check `frame` against `schema` (default: raw_schema of `declaration`, default
    columns.yaml's) and report every failure."""
    declaration = declaration or DECLARATION
    schema = schema if schema is not None else raw_schema(declaration)
    try:
        # Categories are compared as text (columns.py), so `1` and "1" are the same value.
        schema.validate(apply_declared_types(frame, declaration), lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = _summarise(errors.failure_cases, _label_name(schema))
    else:
        failures = ()
    return ValidationReport(n_rows=len(frame), n_columns=frame.shape[1], failures=failures)


def _label_name(schema: pa.DataFrameSchema) -> str:
    """The label the schema's label check is about (raw_schema's declaration)."""
    for check in schema.checks:
        if check.name in LABEL_CHECK_NAMES.values() and check.statistics:
            return str(check.statistics["label"])
    return LABEL.name


def _summarise(failure_cases: pd.DataFrame, label: str) -> tuple[CheckFailure, ...]:
    """One entry per (column, check), with a count and a few distinct offending values."""
    cases = failure_cases.copy()
    is_missing_column = cases["check"] == "column_in_dataframe"
    # pandera names the missing column in `failure_case`, and leaves `column` empty for
    # dataframe-level checks: put a column name on every row so the report can say which.
    cases["column"] = (
        cases["column"]
        .where(~is_missing_column, cases["failure_case"])
        .where(~cases["check"].isin(list(LABEL_CHECK_NAMES.values())), label)
        .fillna("<dataframe>")
    )
    # A range or category check cannot run on a column of the wrong type; pandera reports the
    # resulting exception as one more failure, which only repeats the dtype failure.
    wrong_type = cases.loc[cases["check"].str.contains("dtype(", regex=False), "column"]
    could_not_run = cases["column"].isin(wrong_type) & cases["index"].isna()
    cases = cases[~could_not_run | cases["check"].str.contains("dtype(", regex=False)]
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        # map(str), not astype(str): pandas 3 keeps a missing value as NaN in astype(str).
        values = group["failure_case"].map(str).drop_duplicates().head(MAX_EXAMPLES)
        failures.append(
            CheckFailure(
                column=str(column),
                check=str(check),
                count=len(group),
                examples=tuple(values),
            )
        )
    return tuple(failures)
