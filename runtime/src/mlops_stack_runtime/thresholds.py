"""Choosing a binary model's decision threshold by an objective (params `model.threshold`).

Never on the test set: the training set's rows are scored out of fold (a stratified k-fold of the
same pipeline, seeded by `model.random_state`), and the threshold that best meets the objective on
those scores is kept. Training then fits on the whole training set, decides at that threshold and
records it (audit.py `ModelRecord.threshold`, the registry version's `decision_threshold` tag),
so evaluation, the gates, ONNX parity, batch scoring and the server all decide at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from .config import ThresholdObjective
from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from .config import ModelSettings
    from .data.columns import LabelSpec

FOLDS = 3


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    # How it was set, in words (the record, the model card, the train command's output).
    rule: str


def choose_threshold(
    settings: ModelSettings,
    features: pd.DataFrame,
    truth: pd.Series,
    label: LabelSpec,
    pipeline: Callable[[], Any],
) -> ThresholdChoice:
    """params' number as it is; an objective met on out-of-fold scores of the training rows
    (`pipeline()` gives an unfitted pipeline). Other tasks than binary decide by class: 0.5."""
    fixed = settings.fixed_threshold
    if fixed is not None or label.task != "binary":
        value = 0.5 if fixed is None else fixed
        return ThresholdChoice(value, f"params model.threshold {value}")
    objective = settings.threshold
    assert isinstance(objective, ThresholdObjective)
    y = np.asarray(truth, dtype=np.int64)
    smallest = int(min(y.sum(), len(y) - y.sum()))
    if smallest < FOLDS:
        raise ConfigError(
            f"params.yaml: model.threshold chooses by {objective.objective}, which needs "
            f"{FOLDS} training rows of each class to score out of fold; the smaller class has "
            f"{smallest}: give a number instead"
        )
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=settings.random_state)
    scores = cross_val_predict(pipeline(), features, y, cv=folds, method="predict_proba")[:, 1]
    value = pick_threshold(objective, y, scores)
    decided = scores >= value
    tp = int((decided & (y == 1)).sum())
    precision = tp / max(int(decided.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    return ThresholdChoice(
        value,
        f"chosen for {objective.describe()} on out-of-fold scores of the training set "
        f"({FOLDS} folds): precision {precision:.4f}, recall {recall:.4f}, "
        f"{decided.mean():.1%} predicted positive against a base rate of {y.mean():.1%}",
    )


def pick_threshold(objective: ThresholdObjective, y: np.ndarray, scores: np.ndarray) -> float:
    """The threshold (a score: positive at or above it) that best meets `objective`."""
    precision, recall, thresholds = precision_recall_curve(y, scores)
    # precision[i], recall[i] are those of deciding at thresholds[i] (the last pair: none).
    precision, recall = precision[:-1], recall[:-1]
    if objective.objective == "max_f1":
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        return float(thresholds[int(np.argmax(f1))])
    if objective.objective in ("recall", "precision"):
        target = float(objective.target or 0.0)
        reached = (recall if objective.objective == "recall" else precision) >= target
        if not reached.any():
            best = float(precision.max())
            raise ConfigError(
                f"params.yaml: model.threshold asks for a precision of at least {target}, "
                f"but no threshold reaches it on out-of-fold scores of the training set (the "
                f"best is {best:.4f}): lower the target, or choose by recall or max_f1"
            )
        other = precision if objective.objective == "recall" else recall
        candidates = np.flatnonzero(reached)
        # The best other figure; among equals, the highest threshold (fewest rows flagged).
        best_index = candidates[np.lexsort((thresholds[candidates], other[candidates]))[-1]]
        return float(thresholds[best_index])
    false_positive_rate, true_positive_rate, cut = roc_curve(y, scores)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    cost = (
        float(objective.false_positive_cost or 0.0) * false_positive_rate * negatives
        + float(objective.false_negative_cost or 0.0) * (1 - true_positive_rate) * positives
    )
    chosen = cut[int(np.argmin(cost))]
    return 1.0 if not np.isfinite(chosen) else float(chosen)
