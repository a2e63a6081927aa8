"""Checks before training: what in the data would make a reviewer distrust the model's figures.

`use-data` prints them with its summary and the `validate` stage with its report (and in
reports/validation.json). Each warning names the column, the figure behind it and the setting
that handles it:

- identifiers: a feature named like an id (`customer_id`, `rownames`) with many values lets the
  model learn rows or groups rather than patterns;
- repeated keys: rows sharing an id-like value (several résumés per job ad) belong together, and
  a random split puts them on both sides: `data.split` kind group;
- dates: a column of dates or times is no feature, and a test on the latest period is the honest
  one: `data.split` kind time;
- leakage: one feature alone predicts the label almost perfectly (a single-column decision tree,
  cross-validated);
- proxies: one feature predicts the protected attribute well (the same model, ROC AUC), so
  leaving the attribute out does not keep the model from using it;
- imbalance: a class with a small share of the rows, where a fixed threshold predicts few of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .columns import Declaration, as_category, encode_label

if TYPE_CHECKING:
    from ..config import SplitSettings

# Names of identifiers: `id`, `customer_id`, `CustomerID`, `order_no`, `rownames`, `index`...
ID_NAME = re.compile(
    r"(?:^|[_\W])(?:id|ids|key|uuid|guid|no|nr|num|number)$"
    r"|^(?:rownames|row_?names|index|unnamed: ?0)$",
    re.IGNORECASE,
)
# camelCase and PascalCase ids: `customerId`, `CustomerID` (not `valid`, `lid`).
CAMEL_ID_NAME = re.compile(r"[a-z](?:Id|ID)$")
# An identifier has at least this many values (fewer are codes of a category).
MIN_ID_VALUES = 20
# Rows per value, on average, from which rows sharing a value are groups.
MIN_ROWS_PER_GROUP = 1.5
# Dates as text: 2024-01-31, 2024/01/31, 31/01/2024, 01-31-24, with an optional time.
DATE_TEXT = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})")
# Share of a column's values that must read as dates for it to be a date column.
MIN_DATE_SHARE = 0.95
# One feature predicting the label this well is a likely leak: ROC AUC (binary), balanced
# accuracy (multi-class), R² (regression), out of fold.
LEAK_SCORE = 0.99
# One feature predicting the protected attribute this well (ROC AUC, out of fold) is a proxy.
PROXY_ROC_AUC = 0.8
# Binary: a class under this share of the labelled rows; multi-class: a class under this share.
MIN_CLASS_SHARE = 0.1
MIN_MULTICLASS_SHARE = 0.05
# The models of the leakage and proxy checks see at most this many rows (a seeded sample).
MAX_MODEL_ROWS = 5000
FOLDS = 3
SEED = 0


@dataclass(frozen=True)
class DataWarning:
    """One thing to look at before trusting the model: the column, the figure, the setting."""

    kind: str  # identifier, repeated_key, date, leakage, proxy, imbalance
    column: str
    message: str
    figure: str
    setting: str

    def __str__(self) -> str:
        return f"{self.column}: {self.message} ({self.figure}); {self.setting}"


def check_data(
    frame: pd.DataFrame, declaration: Declaration, split: SplitSettings | None = None
) -> tuple[DataWarning, ...]:
    """The warnings of `frame` under `declaration`, skipping what `split` already handles."""
    label = declaration.label
    features = set(declaration.feature_names)
    protected = declaration.protected_attribute
    others = [
        str(name)
        for name in frame.columns
        if name != label.name and (protected is None or name != protected.name)
    ]
    warnings: list[DataWarning] = []
    grouped_by = split.group_by if split is not None and split.kind == "group" else None
    timed_by = split.time_column if split is not None and split.kind == "time" else None
    for name in others:
        series = frame[name]
        warnings += _identifier(series, name, name in features, grouped=name == grouped_by)
        if name != timed_by:
            warnings += _dates(series, name)
    labelled = frame[frame[label.name].notna()]
    sample = labelled.sample(min(len(labelled), MAX_MODEL_ROWS), random_state=SEED)
    target = encode_label(sample[label.name], label)
    for name in declaration.feature_names:
        if name in sample.columns:
            warnings += _leak(sample[name], name, target, label.task)
    if protected is not None and protected.name in sample.columns:
        for name in declaration.feature_names:
            if name in sample.columns:
                warnings += _proxy(sample[name], name, sample[protected.name], protected.name)
    warnings += _imbalance(labelled[label.name], declaration)
    return tuple(warnings)


def _identifier(series: pd.Series, name: str, is_feature: bool, grouped: bool) -> list[DataWarning]:
    """A repeated key not yet the split's groups, and an identifier used as a feature."""
    values = series.dropna()
    distinct = values.nunique()
    if distinct < MIN_ID_VALUES or not _id_like(values, name):
        return []
    found: list[DataWarning] = []
    per_value = len(values) / distinct
    if per_value >= MIN_ROWS_PER_GROUP and not grouped:
        found.append(
            DataWarning(
                "repeated_key",
                name,
                "rows repeat its values: rows of one value belong together, and a random split "
                "puts them on both sides",
                f"{distinct} values, {per_value:.1f} rows each on average",
                f"set data.split to {{kind: group, group_by: {name}}} in params.yaml",
            )
        )
    if is_feature:
        found.append(
            DataWarning(
                "identifier",
                name,
                "an identifier used as a feature: the model can learn the rows or groups it "
                "names rather than patterns that carry over",
                f"{distinct} distinct values in {len(values)} rows",
                "move it from features to ignored in data/columns.yaml",
            )
        )
    return found


def _id_like(values: pd.Series, name: str) -> bool:
    """Named like an id, or codes: whole numbers or text ending in three or more digits."""
    if ID_NAME.search(name) or CAMEL_ID_NAME.search(name):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return False
    text = values.astype(str)
    return bool(text.str.fullmatch(r"[A-Za-z]{0,4}[-_]?\d{3,}").all())


def _dates(series: pd.Series, name: str) -> list[DataWarning]:
    values = series.dropna()
    if values.empty:
        return []
    if pd.api.types.is_datetime64_any_dtype(values):
        times = pd.to_datetime(values, utc=True)
    else:
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            return []
        text = values.astype(str)
        if text.str.match(DATE_TEXT).mean() < MIN_DATE_SHARE:
            return []
        times = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        if times.notna().mean() < MIN_DATE_SHARE:
            return []
    first, last = times.min(), times.max()
    return [
        DataWarning(
            "date",
            name,
            "dates: no feature as they are, and the honest test of a model that will score "
            "later rows is one on the latest period",
            f"from {first.date()} to {last.date()}",
            f"set data.split to {{kind: time, time_column: {name}}} in params.yaml",
        )
    ]


def _codes(series: pd.Series) -> np.ndarray:
    """One column as a decision tree reads it: numbers as they are, categories as codes (in the
    order of their text), missing values as NaN."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(float).to_numpy().reshape(-1, 1)
    text = as_category(series)
    codes = pd.Categorical(text).codes.astype(float)
    codes[codes < 0] = np.nan
    return codes.reshape(-1, 1)


def _leak(series: pd.Series, name: str, target: pd.Series, task: str) -> list[DataWarning]:
    x = _codes(series)
    y = target.to_numpy()
    if task == "regression":
        if len(y) < 2 * FOLDS:
            return []
        folds = KFold(FOLDS, shuffle=True, random_state=SEED)
        model = DecisionTreeRegressor(min_samples_leaf=5, random_state=SEED)
        predicted = cross_val_predict(model, x, y, cv=folds)
        score, metric = float(r2_score(y, predicted)), "R²"
    else:
        known = y >= 0  # a multi-class value that is no declared class encodes as -1
        x, y = x[known], y[known].astype(int)
        counts = np.bincount(y)
        if np.count_nonzero(counts) < 2 or counts[counts > 0].min() < FOLDS:
            return []
        folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
        model = DecisionTreeClassifier(min_samples_leaf=5, random_state=SEED)
        if task == "binary":
            scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
            score, metric = float(roc_auc_score(y, scores)), "ROC AUC"
        else:
            predicted = cross_val_predict(model, x, y, cv=folds)
            score, metric = float(balanced_accuracy_score(y, predicted)), "balanced accuracy"
    if score < LEAK_SCORE:
        return []
    return [
        DataWarning(
            "leakage",
            name,
            "predicts the label almost perfectly on its own: it may be known only after the "
            "outcome, or be the outcome in other words",
            f"{metric} {score:.3f} from this column alone, cross-validated",
            "check how it is recorded; move it to ignored in data/columns.yaml if it is not "
            "known when the model scores",
        )
    ]


def _proxy(
    series: pd.Series, name: str, attribute: pd.Series, attribute_name: str
) -> list[DataWarning]:
    groups = as_category(attribute)
    known = groups.notna()
    counts = groups[known].value_counts()
    kept = known & groups.isin(counts[counts >= FOLDS].index)
    if groups[kept].nunique() < 2:
        return []
    x, y = _codes(series[kept]), pd.Categorical(groups[kept]).codes
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    model = DecisionTreeClassifier(min_samples_leaf=5, random_state=SEED)
    probabilities = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    if probabilities.shape[1] == 2:
        score = float(roc_auc_score(y, probabilities[:, 1]))
    else:
        score = float(roc_auc_score(y, probabilities, multi_class="ovr", average="macro"))
    if score < PROXY_ROC_AUC:
        return []
    return [
        DataWarning(
            "proxy",
            name,
            f"predicts the protected attribute '{attribute_name}' on its own: the model can use "
            f"{attribute_name} through it, though {attribute_name} is no input",
            f"ROC AUC {score:.3f} from this column alone, cross-validated",
            "move it to ignored in data/columns.yaml, or keep it and watch the fairness report",
        )
    ]


def _imbalance(labels: pd.Series, declaration: Declaration) -> list[DataWarning]:
    label = declaration.label
    if not label.is_classification or labels.empty:
        return []
    shares = as_category(labels).value_counts(normalize=True)
    smallest = shares.idxmin()
    share = float(shares.min())
    if label.task == "binary" and share < MIN_CLASS_SHARE:
        return [
            DataWarning(
                "imbalance",
                label.name,
                f"{label.name} = {smallest} is rare: at a threshold of 0.5 the model may predict "
                "it for few rows, and ROC AUC alone hides that",
                f"{share:.1%} of {len(labels)} labelled rows",
                "set model.threshold in params.yaml, and read pr_auc and recall in "
                "reports/metrics.json",
            )
        ]
    if label.task == "multiclass" and share < MIN_MULTICLASS_SHARE:
        return [
            DataWarning(
                "imbalance",
                label.name,
                f"class {smallest} is rare: its F1 counts as much as the others' in macro F1, "
                "on few test rows",
                f"{share:.1%} of {len(labels)} labelled rows",
                "add rows of it if you can, or merge it with a neighbouring class",
            )
        ]
    return []
