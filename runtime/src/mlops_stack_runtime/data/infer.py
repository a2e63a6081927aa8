"""Infer the column declaration (columns.yaml) of a dataset: what `use-data` writes.

pandera's schema inference gives each column's dtype, nullability and value range; on top of it a
column becomes a category when it holds text or true/false, or whole numbers with at most
`max_category_levels` distinct values (integer codes such as 1..4). Columns that cannot be useful
features are left out, each with its reason: constant columns, identifiers (a distinct value in
every row) and near-unique text. The label's task (binary, multi-class, regression) follows its
values or TASK= (infer_label.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..errors import DataSourceError
from .columns import ColumnKind, ColumnSpec, Declaration, LabelSpec, as_category
from .infer_label import infer_label, natural

# A text column with more distinct values than this share of its rows is free text or an id.
NEAR_UNIQUE_SHARE = 0.9
# A text category with more values than this is refused as a category (free text, ids).
MAX_TEXT_LEVELS = 200


@dataclass(frozen=True)
class ColumnSummary:
    """What a person should see of one column before trusting the declaration."""

    name: str
    role: str  # feature, label, protected attribute, ignored
    kind: str
    missing_share: float
    detail: str  # categories or range
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inference:
    declaration: Declaration
    summaries: tuple[ColumnSummary, ...]
    # Rows of each class (classification); empty for regression.
    label_counts: dict[str, int]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    rule: str = ""
    # How the label's task was chosen, in words.
    task_rule: str = ""
    labelled_rows: int = 0


def category_rule(max_levels: int) -> str:
    return (
        "a column is a category when it holds text or true/false, or whole numbers with at most "
        f"{max_levels} distinct values (params.yaml data.max_category_levels); other numbers are "
        "int (whole, never missing) or float"
    )


def infer_declaration(
    frame: pd.DataFrame,
    label: str,
    positive: str | None = None,
    protected: str | None = None,
    max_category_levels: int = 10,
    task: str | None = None,
    max_classes: int = 50,
    test_size: float = 0.2,
) -> Inference:
    """The declaration of `frame`; DataSourceError naming the column when the label (for the
    task given, if one is) or the protected attribute cannot be used."""
    _require_column(frame, label, "label (LABEL)")
    inferred = infer_label(
        frame[label], label, positive, task, max_classes, max_category_levels, test_size
    )
    label_spec = inferred.spec
    if protected is not None:
        _require_column(frame, protected, "protected attribute (PROTECTED)")
        if protected == label:
            raise DataSourceError(f"the protected attribute cannot be the label ('{label}')")
    # A DataFrame's schema by construction. Without pandas' types both of pandera's overloads
    # of infer_schema take Any, and mypy picks the first one: the Series'.
    schema = cast(pa.DataFrameSchema, pa.infer_schema(frame))
    features: list[ColumnSpec] = []
    ignored: dict[str, str] = {}
    summaries: list[ColumnSummary] = []
    protected_spec: ColumnSpec | None = None
    target = _target(frame[label], label_spec)
    labelled = frame[label].notna()
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        # Text of each value, computed once per column (the costly step on large files).
        text = as_category(series) if _is_text(series) else None
        column_schema = schema.columns[name]
        spec, reason = _column(series, text, str(name), column_schema, max_category_levels)
        notes = _notes(series, text, spec, target, labelled, label_spec.task)
        if name == protected:
            if spec is None or (spec.kind != "category" and series.nunique() > MAX_TEXT_LEVELS):
                raise DataSourceError(
                    f"protected attribute '{protected}' cannot form groups: "
                    f"{reason or 'too many values'}"
                )
            protected_spec = _as_protected(series, spec)
            summaries.append(_summary(series, protected_spec, "protected attribute", notes))
            continue
        if spec is None:
            ignored[str(name)] = reason
            summaries.append(
                ColumnSummary(str(name), "ignored", "-", _missing(series), reason, notes)
            )
            continue
        features.append(spec)
        summaries.append(_summary(series, spec, "feature", notes))
    if not features:
        raise DataSourceError(
            "no column can be a feature: every column besides the label was left out "
            f"({'; '.join(f'{k}: {v}' for k, v in ignored.items()) or 'there are none'})"
        )
    declaration = Declaration(tuple(features), label_spec, protected_spec, ignored)
    label_summary = ColumnSummary(
        label, "label", label_spec.task, _missing(frame[label]), inferred.detail
    )
    warnings = tuple(f"{summary.name}: {note}" for summary in summaries for note in summary.notes)
    return Inference(
        declaration=declaration,
        summaries=(label_summary, *summaries),
        label_counts=inferred.counts,
        warnings=warnings,
        rule=category_rule(max_category_levels),
        task_rule=f"{label_spec.task}: {inferred.rule}",
        labelled_rows=inferred.labelled_rows,
    )


def _require_column(frame: pd.DataFrame, name: str, role: str) -> None:
    if name not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:30]))
        raise DataSourceError(f"{role} '{name}' is not a column of the file (columns: {shown})")


def _is_text(series: pd.Series) -> bool:
    """Text and true/false columns (as opposed to numbers and dates)."""
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    dated = pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(
        series
    )
    return not numeric and not dated


def _column(
    series: pd.Series, text: pd.Series | None, name: str, column_schema: Any, max_levels: int
) -> tuple[ColumnSpec | None, str]:
    """The spec of a feature column, or None and the reason it is left out."""
    values = series.dropna()
    n_distinct = values.nunique()
    nullable = bool(series.isna().any())
    if n_distinct == 0:
        return None, "every value is missing"
    if n_distinct == 1:
        return None, f"constant (always {values.iloc[0]!r})"
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return None, "dates and times are not a feature kind: derive numbers from them in source.py"
    if numeric:
        whole = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        if whole and n_distinct <= max_levels:
            return _category(as_category(series), name, nullable), ""
        if whole and n_distinct == len(series) and pd.api.types.is_integer_dtype(series):
            return None, "looks like an identifier (a distinct whole number in every row)"
        low, high = _range(column_schema)
        kind: ColumnKind = (
            "int" if pd.api.types.is_integer_dtype(series) and not nullable else "float"
        )
        return ColumnSpec(name, kind, name, nullable, low, high), ""
    assert text is not None
    present = text.dropna()
    if n_distinct == len(series) or (
        len(present) >= 20 and n_distinct > NEAR_UNIQUE_SHARE * len(present)
    ):
        return (
            None,
            f"near-unique text ({n_distinct} distinct values in {len(present)} rows): "
            "an id or free text",
        )
    if n_distinct > MAX_TEXT_LEVELS:
        return None, f"{n_distinct} distinct text values: too many for a category"
    return _category(text, name, nullable), ""


def _category(text: pd.Series, name: str, nullable: bool) -> ColumnSpec:
    categories = sorted(text.dropna().unique(), key=natural)
    return ColumnSpec(name, "category", name, nullable, categories=tuple(categories))


def _as_protected(series: pd.Series, spec: ColumnSpec | None) -> ColumnSpec:
    """A protected attribute is grouped on its values, whatever their type."""
    if spec is not None and spec.kind == "category":
        return ColumnSpec(
            spec.name,
            "category",
            "Protected attribute (not a model input)",
            spec.nullable,
            categories=spec.categories,
        )
    return ColumnSpec(
        str(series.name),
        "category",
        "Protected attribute (not a model input)",
        bool(series.isna().any()),
        categories=tuple(sorted(as_category(series).dropna().unique(), key=natural)),
    )


def _range(column_schema: Any) -> tuple[float | None, float | None]:
    low = high = None
    for check in column_schema.checks:
        statistics = check.statistics or {}
        if "min_value" in statistics:
            low = _number(statistics["min_value"])
        if "max_value" in statistics:
            high = _number(statistics["max_value"])
    return low, high


def _number(value: Any) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else value


def _missing(series: pd.Series) -> float:
    return float(series.isna().mean())


def _summary(
    series: pd.Series, spec: ColumnSpec, role: str, notes: tuple[str, ...]
) -> ColumnSummary:
    if spec.kind == "category":
        shown = ", ".join(spec.categories[:12]) + (" ..." if len(spec.categories) > 12 else "")
        detail = f"{len(spec.categories)} categories: {shown}"
    else:
        detail = (
            f"{spec.min_value:g} .. {spec.max_value:g}"
            if spec.min_value is not None and spec.max_value is not None
            else "-"
        )
    return ColumnSummary(spec.name, role, spec.kind, _missing(series), detail, notes)


def _roc_auc(positive: np.ndarray, scores: pd.Series) -> float:
    """ROC AUC of one column as a score (Mann-Whitney U from ranks; ties share a rank)."""
    ranks = scores.rank().to_numpy()
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    u = ranks[positive.astype(bool)].sum() - n_positive * (n_positive + 1) / 2
    return float(u / (n_positive * n_negative))


def _target(series: pd.Series, label: LabelSpec) -> pd.Series:
    """The label as the leakage notes compare it: binary 1/0 (positive or not), multi-class the
    class text, regression the number."""
    if label.task == "binary":
        return (as_category(series) == label.positive).astype(np.int64)
    if label.task == "multiclass":
        return as_category(series)
    return pd.to_numeric(series, errors="coerce")


def _notes(
    series: pd.Series,
    text: pd.Series | None,
    spec: ColumnSpec | None,
    target: pd.Series,
    labelled: pd.Series,
    task: str,
) -> tuple[str, ...]:
    """What deserves a second look: a column that gives the label away may leak it.

    A category whose every value has a single label value (any task); a number that separates
    a binary label almost perfectly (ROC AUC), that puts each class of a multi-class label in a
    range of its own, or that moves with a regression label almost exactly (correlation).
    """
    if spec is None or not labelled.any():
        return ()
    present = series.notna() & labelled
    if present.sum() < 10:
        return ()
    if spec.kind == "category":
        values = text[present] if text is not None else as_category(series[present])
        groups = pd.DataFrame({"v": values, "y": target[present]})
        single = groups.groupby("v")["y"].nunique() == 1
        if bool(single.all()) and groups["v"].nunique() < present.sum():
            return ("each value has a single label value: it may leak the label",)
        return ()
    if task == "binary":
        return _separates_binary(series[present], target[present].to_numpy())
    if task == "multiclass":
        return _separates_classes(series[present], target[present])
    return _moves_with_label(series[present], target[present])


def _separates_binary(values: pd.Series, y: np.ndarray) -> tuple[str, ...]:
    if not 0 < y.sum() < len(y):
        return ()
    auc = _roc_auc(y, values)
    if auc >= 0.99 or auc <= 0.01:
        return (
            f"separates the label almost perfectly (ROC AUC {max(auc, 1 - auc):.3f}): "
            "it may leak the label",
        )
    return ()


def _separates_classes(values: pd.Series, classes: pd.Series) -> tuple[str, ...]:
    ranges = values.groupby(classes).agg(["min", "max"]).sort_values("min")
    if len(ranges) < 2:
        return ()
    if bool((ranges["max"].to_numpy()[:-1] < ranges["min"].to_numpy()[1:]).all()):
        return ("puts each class in a range of its own: it may leak the label",)
    return ()


def _moves_with_label(values: pd.Series, y: pd.Series) -> tuple[str, ...]:
    # Pearson for a linear tie, Spearman (on ranks) for any monotonic one.
    numbers = values.astype(float)
    correlations = [numbers.corr(y), numbers.rank().corr(y.rank())]
    strongest = max((abs(c) for c in correlations if not np.isnan(c)), default=0.0)
    if strongest >= 0.99:
        return (
            f"moves with the label almost exactly (correlation {strongest:.3f}): "
            "it may leak the label",
        )
    return ()
