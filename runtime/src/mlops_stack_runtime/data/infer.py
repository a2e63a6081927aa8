"""Infer the column declaration (columns.yaml) of a dataset: what `use-data` writes.

pandera's schema inference gives each column's dtype, nullability and value range; on top of it a
column becomes a category when it holds text or true/false, or whole numbers with at most
`max_category_levels` distinct values (integer codes such as 1..4). Columns that cannot be useful
features are left out, each with its reason: constant columns, identifiers (a distinct value in
every row) and near-unique text. The label must have exactly two values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..errors import DataSourceError
from .columns import ColumnKind, ColumnSpec, Declaration, LabelSpec, as_category

# A text column with more distinct values than this share of its rows is free text or an id.
NEAR_UNIQUE_SHARE = 0.9
# A text category with more values than this is refused as a category (free text, ids).
MAX_TEXT_LEVELS = 200
# Values conventionally meaning the positive class, when POSITIVE is not given.
CONVENTIONAL_POSITIVE = ({"0", "1"}, "1"), ({"false", "true"}, "true")


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
    label_counts: dict[str, int]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    rule: str = ""


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
) -> Inference:
    """The declaration of `frame`; DataSourceError naming the column when the label or the
    protected attribute cannot be used."""
    _require_column(frame, label, "label (LABEL)")
    label_spec, label_counts = _label(frame[label], label, positive)
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
    positives = frame[label].pipe(as_category) == label_spec.positive
    labelled = frame[label].notna()
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        # Text of each value, computed once per column (the costly step on large files).
        text = as_category(series) if _is_text(series) else None
        column_schema = schema.columns[name]
        spec, reason = _column(series, text, str(name), column_schema, max_category_levels)
        notes = _notes(series, text, spec, positives, labelled)
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
        label,
        "label",
        "binary",
        _missing(frame[label]),
        ", ".join(f"{value}: {count}" for value, count in label_counts.items())
        + f" (positive {label_spec.positive})",
    )
    warnings = tuple(f"{summary.name}: {note}" for summary in summaries for note in summary.notes)
    return Inference(
        declaration=declaration,
        summaries=(label_summary, *summaries),
        label_counts=label_counts,
        warnings=warnings,
        rule=category_rule(max_category_levels),
    )


def _require_column(frame: pd.DataFrame, name: str, role: str) -> None:
    if name not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:30]))
        raise DataSourceError(f"{role} '{name}' is not a column of the file (columns: {shown})")


def _label(series: pd.Series, name: str, positive: str | None) -> tuple[LabelSpec, dict[str, int]]:
    values = as_category(series)
    counts = {str(k): int(v) for k, v in values.value_counts(dropna=True).sort_index().items()}
    if len(counts) != 2:
        shown = ", ".join(f"{value} ({count} rows)" for value, count in list(counts.items())[:10])
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        raise DataSourceError(
            f"label '{name}' must have exactly two distinct values, it has {len(counts)}: "
            f"{shown or 'none'}{more}"
        )
    found = tuple(counts)
    if positive is None:
        chosen = next((p for values_, p in CONVENTIONAL_POSITIVE if set(found) == values_), None)
        if chosen is None:
            raise DataSourceError(
                f"label '{name}' has the values {found[0]} and {found[1]}: say which is the "
                "positive class with POSITIVE=<value>"
            )
    else:
        chosen = as_category(pd.Series([positive])).iloc[0]
        if chosen not in found:
            raise DataSourceError(
                f"POSITIVE={positive} is not a value of label '{name}' ({found[0]}, {found[1]})"
            )
    negative = next(value for value in found if value != chosen)
    description = f"{chosen} (positive) or {negative}"
    return LabelSpec(name, description, (negative, chosen), chosen), counts


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
    categories = sorted(text.dropna().unique(), key=_natural)
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
        categories=tuple(sorted(as_category(series).dropna().unique(), key=_natural)),
    )


def _natural(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order before text: "2" before "10"."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


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


def _notes(
    series: pd.Series,
    text: pd.Series | None,
    spec: ColumnSpec | None,
    positives: pd.Series,
    labelled: pd.Series,
) -> tuple[str, ...]:
    """What deserves a second look: a column that separates the label perfectly may leak it."""
    if spec is None or not labelled.any():
        return ()
    notes: list[str] = []
    present = series.notna() & labelled
    if present.sum() < 10:
        return ()
    if spec.kind == "category":
        values = text[present] if text is not None else as_category(series[present])
        groups = pd.DataFrame({"v": values, "y": positives[present]})
        purity = groups.groupby("v")["y"].agg(lambda y: max(y.mean(), 1 - y.mean()))
        if bool((purity == 1.0).all()) and groups["v"].nunique() < present.sum():
            notes.append("each value has a single label value: it may leak the label")
    else:
        y = positives[present].to_numpy()
        if 0 < y.sum() < len(y):
            auc = _roc_auc(y, series[present])
            if auc >= 0.99 or auc <= 0.01:
                notes.append(
                    f"separates the label almost perfectly (ROC AUC {max(auc, 1 - auc):.3f}): "
                    "it may leak the label"
                )
    return tuple(notes)
