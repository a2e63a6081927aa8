"""Data contracts as pandera schemas, derived from the column specs of columns.py.

`raw_schema` checks a whole dataset (features, protected attribute, label); `features_schema`
checks model inputs only (what the model server receives). `validate_frame` collects every
failure at once into a report that names the column, the check and offending values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from .columns import DECLARATION, FEATURES, LABEL, ColumnSpec, Declaration, apply_declared_types

LABEL_CHECK_NAME = "label_has_both_classes"
MAX_EXAMPLES = 5


def column_schema(spec: ColumnSpec) -> pa.Column:
    """A pandera column with the dtype, range, nullability and categories of the spec."""
    checks: list[pa.Check] = []
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


def raw_schema(declaration: Declaration = DECLARATION) -> pa.DataFrameSchema:
    """A full dataset: features, protected attribute (if declared) and a label with both values."""
    return pa.DataFrameSchema(
        {spec.name: column_schema(spec) for spec in declaration.all_columns},
        checks=[
            pa.Check(
                lambda frame: _label_has_both_classes(frame, declaration.label.name),
                name=LABEL_CHECK_NAME,
            )
        ],
    )


def _label_has_both_classes(frame: pd.DataFrame, label: str) -> bool:
    # A missing label is reported by its own column check; this one covers a constant label,
    # on which no classifier can be trained or evaluated.
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

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "failures": [asdict(failure) for failure in self.failures],
        }

    def to_text(self) -> str:
        if self.passed:
            return f"data validation passed: {self.n_rows} rows, {self.n_columns} columns"
        lines = [f"data validation failed: {len(self.failures)} check(s) failed"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def validate_frame(
    frame: pd.DataFrame, schema: pa.DataFrameSchema | None = None
) -> ValidationReport:
    """Check `frame` against `schema` (default: raw_schema) and report every failure."""
    schema = schema if schema is not None else raw_schema()
    try:
        # Categories are compared as text (columns.py), so `1` and "1" are the same value.
        schema.validate(apply_declared_types(frame), lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = _summarise(errors.failure_cases)
    else:
        failures = ()
    return ValidationReport(n_rows=len(frame), n_columns=frame.shape[1], failures=failures)


def _summarise(failure_cases: pd.DataFrame) -> tuple[CheckFailure, ...]:
    """One entry per (column, check), with a count and a few distinct offending values."""
    cases = failure_cases.copy()
    is_missing_column = cases["check"] == "column_in_dataframe"
    # pandera names the missing column in `failure_case`, and leaves `column` empty for
    # dataframe-level checks: put a column name on every row so the report can say which.
    cases["column"] = (
        cases["column"]
        .where(~is_missing_column, cases["failure_case"])
        .where(cases["check"] != LABEL_CHECK_NAME, LABEL.name)
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
