"""Rows generated from the column declaration alone: the `sample` data source.

Any declaration gets a dataset that passes its schema, with a label that depends on the features
(so a model learns something) and, with `shift` > 0, a changed population for drift checks. The
tests use it, so they follow columns.yaml whatever data the team adopted.

The label follows its task: binary, the positive value with a probability logistic in the
features' effect; multi-class, the effect plus logistic noise cut into as many equal shares as
there are classes (every class present, in order); regression, the same noisy effect mapped
into the label's declared range (0 to 100 without one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import DECLARATION, ColumnSpec, Declaration, LabelSpec

MISSING_SHARE = 0.05
# Scale of the label's dependence on the features: high enough for a clear signal (ROC AUC well
# above 0.75), low enough that no feature decides the label alone.
SIGNAL = 3.0


def generate_sample(
    n_rows: int, seed: int, shift: float = 0.0, declaration: Declaration | None = None
) -> pd.DataFrame:
    """`n_rows` rows with every declared column; same seed, same frame."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    declaration = declaration or DECLARATION
    rng = np.random.default_rng(seed)
    columns: dict[str, pd.Series] = {}
    logit = np.zeros(n_rows)
    for spec in declaration.features:
        values, effect = _feature(spec, n_rows, rng, shift)
        columns[spec.name] = values
        logit += effect
    logit *= SIGNAL / np.sqrt(max(len(declaration.features), 1))
    label = declaration.label
    columns[label.name] = _label(label, logit, rng)
    if declaration.protected_attribute is not None:
        # Drawn independently of the features and the label: a model should pass a fairness gate.
        values, _ = _feature(declaration.protected_attribute, n_rows, rng, 0.0, missing=False)
        columns[declaration.protected_attribute.name] = values
    frame = pd.DataFrame(columns)
    protected = (
        () if declaration.protected_attribute is None else (declaration.protected_attribute.name,)
    )
    return frame[[*declaration.feature_names, *protected, label.name]]


def _label(label: LabelSpec, logit: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """The label's values from the features' effect on it (`logit`), per task."""
    if label.task == "binary":
        positive = rng.random(len(logit)) < 1 / (1 + np.exp(-logit))
        negative, positive_value = label.classes
        return pd.Series(np.where(positive, positive_value, negative), dtype=object)
    # The effect plus logistic noise: what the binary label thresholds at 0.
    noisy = logit + rng.logistic(0.0, 1.0, len(logit))
    if label.task == "multiclass":
        classes = np.asarray(label.classes, dtype=object)
        # Equal shares in the order of the noisy effect: each class as common as the others.
        ranks = np.argsort(np.argsort(noisy, kind="stable"), kind="stable")
        return pd.Series(classes[ranks * len(classes) // len(logit)], dtype=object)
    low, high = label.min_value, label.max_value
    if low is None:
        low = 0.0 if high is None else high - 100.0
    if high is None:
        high = low + 100.0
    position = 1 / (1 + np.exp(-noisy / 2))
    return pd.Series((low + position * (high - low)).astype(np.float64))


def _feature(
    spec: ColumnSpec, n_rows: int, rng: np.random.Generator, shift: float, missing: bool = True
) -> tuple[pd.Series, np.ndarray]:
    """A column's values and their (centred, unit-scale) effect on the label's log-odds."""
    direction = rng.choice([-1.0, 1.0])
    if spec.kind == "category":
        categories = np.array(spec.categories, dtype=object)
        weights = np.ones(len(categories))
        weights[0] += shift * len(categories)  # a shift makes the first category common
        codes = rng.choice(len(categories), size=n_rows, p=weights / weights.sum())
        effects = rng.normal(0, 1, len(categories))
        series = pd.Series(categories[codes], dtype=object)
        effect = effects[codes] - effects.mean()
    else:
        low = spec.min_value if spec.min_value is not None else 0.0
        high = spec.max_value if spec.max_value is not None else low + 100.0
        position = np.clip(rng.beta(2, 2, n_rows) + 0.5 * shift, 0, 1)
        values = low + position * (high - low)
        if spec.kind == "int":
            values = np.clip(np.round(values), np.ceil(low), np.floor(high))
            series = pd.Series(values.astype(np.int64))
        else:
            series = pd.Series(values.astype(np.float64))
        effect = direction * (position - 0.5) * 4
    if missing and spec.nullable and spec.kind != "int":
        series = series.where(rng.random(n_rows) >= MISSING_SHARE)
        effect = np.where(series.isna(), 0.0, effect)
    return series, effect
